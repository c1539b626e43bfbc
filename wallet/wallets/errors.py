"""The wallets area's errors."""

from wallet.errors import Conflict, NotFound


class UnknownWallet(NotFound):
    problem = "unknown-wallet"
    title = "No such wallet"


class WalletNotActive(Conflict):
    problem = "wallet-not-active"
    title = "The wallet is frozen or closed"
