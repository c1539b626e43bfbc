"""What a chain's hot wallet can still spend: its balances less everything it signed and has
not seen mined, each transaction at its fee cap. The withdrawals' transactions and the sweeps'
(gas top-ups, refuels, transfers to the cold address) both count: either side signing on the
wallet's whole balance would leave the other's transaction, and every nonce after it, unable
to be mined.

The broadcaster and the sweeper build it once per run, under the chain's hot-wallet lock (one
signer at a time), and take from it what each transaction they sign may spend.
"""

from collections import defaultdict

from sqlalchemy.orm import Session

from chains import RpcClient, native_balance, token_balance
from wallet.assets.service import Asset, AssetKind, Catalogue
from wallet.sweeps.service import hot_wallet_sends
from wallet.withdrawals.repository import in_flight
from wallet.withdrawals.service import native_asset


class HotWalletLiquidity:
    """The hot wallet's spendable balances in this run, reduced as the run signs."""

    def __init__(
        self, rpc: RpcClient, address: str, native: int, tokens_committed: dict[str, int]
    ) -> None:
        self._rpc = rpc
        self._address = address
        self._native = native
        self._committed = tokens_committed
        self._tokens: dict[str, int] = {}

    @property
    def native(self) -> int:
        """The native asset (wei) still spendable."""
        return self._native

    def tokens(self, asset: Asset) -> int:
        """What of the token `asset` is still spendable."""
        if asset.code not in self._tokens:
            assert asset.contract_address is not None
            held = token_balance(self._rpc, asset.contract_address, self._address)
            self._tokens[asset.code] = held - self._committed.get(asset.code, 0)
        return self._tokens[asset.code]

    def take(self, asset: Asset, amount: int, max_cost: int) -> bool:
        """Reserve what a transaction of `amount` of `asset` may spend at most (its value and
        gas at the fee cap, `max_cost`, in the native asset), if the wallet has it."""
        if self._native < max_cost:
            return False
        if asset.kind is not AssetKind.NATIVE:
            if self.tokens(asset) < amount:
                return False
            self._tokens[asset.code] -= amount
        self._native -= max_cost
        return True


def hot_wallet_liquidity(
    session: Session, catalogue: Catalogue, chain: str, address: str, rpc: RpcClient
) -> HotWalletLiquidity:
    """The chain's hot wallet `address` as the node sees it, less what its unmined withdrawals
    and sweep transactions may still take."""
    native = native_asset(catalogue, chain).code
    committed = 0
    tokens: dict[str, int] = defaultdict(int)
    for withdrawal in in_flight(session, chain, address):
        committed += withdrawal.gas * withdrawal.max_fee_per_gas
        if withdrawal.asset == native:
            committed += withdrawal.amount
        else:
            tokens[withdrawal.asset] += withdrawal.amount
    for send in hot_wallet_sends(session, catalogue, chain, address):
        committed += send.max_cost
        if send.token is not None:
            tokens[send.token] += send.tokens
    return HotWalletLiquidity(rpc, address, native_balance(rpc, address) - committed, dict(tokens))
