"""The wallets area's errors."""

from wallet.errors import Conflict, NotFound


class UnknownWallet(NotFound):
    problem = "unknown-wallet"
    title = "No such wallet"


class WalletNotActive(Conflict):
    problem = "wallet-not-active"
    title = "The wallet is frozen or closed"


class WalletInDebt(Conflict):
    problem = "wallet-in-debt"
    title = "The wallet holds a negative balance; it stays restricted until that is paid"
