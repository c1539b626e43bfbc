"""What the chain holds for us, asked of the node: the custody status (`wallet custody
status`) and the holdings check of `wallet reconcile`.

The check compares, per chain and asset, what the deposit addresses and the hot wallets hold
on the chain with what the ledger says we hold there (`chain:<chain>`, whose posted balance
is the negative of our holdings), allowing for what is in flight: deposits on the chain not
yet credited (or below the minimum, never credited), withdrawals mined but not yet posted,
and sweep transactions mined whose fees (and a cold transfer's amount) are not yet booked.
A node that does not answer makes the figure unknown, never zero.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from chains import (
    TRANSFER_TOPIC,
    RpcClient,
    RpcError,
    TransactionState,
    native_balance,
    token_balance,
)
from chains import transaction_statuses as statuses_of
from wallet.assets.service import Asset, AssetKind, Catalogue, Chain
from wallet.sweeps.models import OPEN_STATUSES, SweepKind, SweepStatus
from wallet.sweeps.repository import (
    chains_in_use,
    deposit_addresses,
    mined_unsettled_withdrawals,
    open_transactions,
    sweeps_of,
    system_posted,
    uncredited_deposits,
)
from wallet.withdrawals.service import hot_wallet_addresses, native_asset


def held(rpc: RpcClient, asset: Asset, address: str) -> int:
    if asset.kind is AssetKind.NATIVE:
        return native_balance(rpc, address)
    assert asset.contract_address is not None
    return token_balance(rpc, asset.contract_address, address)


@dataclass(frozen=True)
class Holding:
    """One asset of one chain: on the chain (None: the node did not answer) and as the
    ledger has it, with what is in flight."""

    chain: str
    asset: str
    on_chain: int | None
    ledger: int
    in_flight: int

    @property
    def difference(self) -> int | None:
        return None if self.on_chain is None else self.on_chain - self.ledger - self.in_flight


def chains_to_reconcile(session: Session, catalogue: Catalogue) -> list[str]:
    """The chains of the catalogue with deposit addresses or holdings in the ledger."""
    return [chain for chain in chains_in_use(session) if chain in catalogue.chains]


def reconcile_chain(
    session: Session,
    catalogue: Catalogue,
    chain: str,
    rpc: RpcClient,
    hot_addresses: Sequence[str],
) -> list[Holding]:
    """The holdings of each asset of `chain`: on the chain (deposit addresses and hot
    wallets), in the ledger, and in flight."""
    assets = [a for a in catalogue.assets_on(chain) if a.kind is not AssetKind.FIAT]
    addresses = [a.address for a in deposit_addresses(session, chain)]
    addresses += sorted(set(hot_addresses) | set(hot_wallet_addresses(session, chain)))
    posted = system_posted(session, f"chain:{chain}")
    in_flight = {a.code: 0 for a in assets}
    for code, amount in uncredited_deposits(session, chain).items():
        in_flight[code] += amount
    native = native_asset(catalogue, chain).code
    for mined in mined_unsettled_withdrawals(session, chain):
        in_flight[mined.asset] -= mined.amount
        in_flight[native] -= mined.network_fee
    on_chain: dict[str, int] | None = {}
    try:
        for unbooked in _mined_unbooked(session, chain, rpc):
            in_flight[native] -= unbooked.fee
            if unbooked.cold_amount:
                in_flight[unbooked.asset] -= unbooked.cold_amount
        on_chain = {a.code: sum(held(rpc, a, address) for address in addresses) for a in assets}
    except RpcError:
        on_chain = None
    return [
        Holding(
            chain,
            a.code,
            None if on_chain is None else on_chain[a.code],
            -posted.get(a.code, 0),
            in_flight[a.code],
        )
        for a in assets
    ]


@dataclass(frozen=True)
class _Unbooked:
    asset: str
    fee: int
    cold_amount: int


def _mined_unbooked(session: Session, chain: str, rpc: RpcClient) -> list[_Unbooked]:
    """Sweep transactions the node has mined whose receipt the sweeper has not recorded."""
    open_txs = open_transactions(session, chain)
    if not open_txs:
        return []
    found = []
    for tx, status in zip(open_txs, statuses_of(rpc, [t.tx_hash for t in open_txs]), strict=True):
        if status.state is not TransactionState.MINED or status.receipt is None:
            continue
        cold = tx.kind == SweepKind.COLD and status.receipt.succeeded
        found.append(_Unbooked(tx.asset, status.receipt.fee, tx.amount if cold else 0))
    return found


@dataclass
class AssetCustody:
    """`wallet custody status` for one asset of one chain."""

    chain: str
    asset: Asset
    hot: int | None
    unswept: dict[str, int] = field(default_factory=dict)
    top_ups_in_flight: list[str] = field(default_factory=list)
    cold_transfers: list[str] = field(default_factory=list)


def custody_status(
    session: Session, catalogue: Catalogue, chain: str, rpc: RpcClient, hot: str | None
) -> list[AssetCustody]:
    """Per asset: the hot wallet's balance, each deposit address's unswept balance, the gas
    top-ups in flight and the cold transfers (None where the node did not answer)."""
    assets = [a for a in catalogue.assets_on(chain) if a.kind is not AssetKind.FIAT]
    addresses = [a.address for a in deposit_addresses(session, chain)]
    top_ups = sweeps_of(
        session, chain, SweepKind.SWEEP, [SweepStatus.GAS_REQUESTED, SweepStatus.REFUEL_REQUESTED]
    )
    colds = sweeps_of(session, chain, SweepKind.COLD)
    report = []
    for asset in assets:
        entry = AssetCustody(chain, asset, None)
        entry.top_ups_in_flight = [
            f"{s.id} {s.source} for {asset.format(s.amount)} {s.asset}"
            for s in top_ups
            if s.asset == asset.code
        ]
        entry.cold_transfers = [
            f"{s.id} {asset.format(s.amount)} to {s.destination}: {s.status}"
            + (" (in flight)" if s.status in OPEN_STATUSES else "")
            for s in colds
            if s.asset == asset.code
        ]
        try:
            entry.hot = None if hot is None else held(rpc, asset, hot)
            for address in addresses:
                amount = held(rpc, asset, address)
                if amount:
                    entry.unswept[address] = amount
        except RpcError:
            entry.hot = None
            entry.unswept = {}
        report.append(entry)
    return report


class NotCapital(Exception):
    """A transaction that cannot be booked as the house's capital: not found, not final,
    reverted, or sending the hot wallet nothing."""


def received_by_hot_wallet(
    rpc: RpcClient, catalogue: Catalogue, chain: Chain, hot: str, tx_hash: str
) -> dict[Asset, int]:
    """What the final transaction `tx_hash` sent the hot wallet `hot`, per asset: its value in
    the native asset, and the catalogue's tokens transferred to it (its Transfer logs)."""
    transaction = rpc.call("eth_getTransactionByHash", tx_hash)
    receipt = rpc.call("eth_getTransactionReceipt", tx_hash)
    if transaction is None or receipt is None:
        raise NotCapital(f"{tx_hash} is not mined on {chain.name}")
    if int(receipt["status"], 16) != 1:
        raise NotCapital(f"{tx_hash} was reverted: it moved nothing")
    confirmations = int(rpc.call("eth_blockNumber"), 16) - int(receipt["blockNumber"], 16) + 1
    if confirmations < chain.confirmations:
        raise NotCapital(
            f"{tx_hash} has {confirmations} of the {chain.confirmations} confirmations "
            f"{chain.name} needs: not final yet"
        )
    received: dict[Asset, int] = {}
    value = int(transaction["value"], 16)
    if (transaction.get("to") or "").lower() == hot and value > 0:
        received[native_asset(catalogue, chain.name)] = value
    tokens = {
        asset.contract_address.lower(): asset
        for asset in catalogue.assets_on(chain.name)
        if asset.kind is AssetKind.ERC20 and asset.contract_address is not None
    }
    for log in receipt["logs"]:
        topics = log["topics"]
        token = tokens.get(log["address"].lower())
        if token is None or len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
            continue
        if "0x" + topics[2][-40:].lower() == hot:
            received[token] = received.get(token, 0) + int(log["data"], 16)
    if not received:
        raise NotCapital(f"{tx_hash} sent the hot wallet {hot} nothing")
    return received
