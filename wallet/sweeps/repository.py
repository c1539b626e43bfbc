"""The sweeps' queries: jobs and their transactions, the addresses to sweep, and the ledger's
and the other areas' figures that reconciling the chain's holdings needs."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from wallet.deposits.models import DepositAddress
from wallet.sweeps.models import (
    OPEN_STATUSES,
    Sweep,
    SweepKind,
    SweepPhase,
    SweepStatus,
    SweepTransaction,
)


@dataclass(frozen=True)
class IndexedAddress:
    address: str
    derivation_index: int


def deposit_addresses(session: Session, chain: str) -> list[IndexedAddress]:
    """The chain's deposit addresses (lowercase) with their derivation index."""
    rows = session.execute(
        select(DepositAddress.address, DepositAddress.derivation_index)
        .where(DepositAddress.chain == chain)
        .order_by(DepositAddress.derivation_index)
    )
    return [IndexedAddress(address, index) for address, index in rows]


def derivation_index(session: Session, chain: str, address: str) -> int:
    return session.scalars(
        select(DepositAddress.derivation_index).where(
            DepositAddress.chain == chain, DepositAddress.address == address
        )
    ).one()


def open_sweeps(session: Session, chain: str) -> list[Sweep]:
    """The chain's unfinished jobs, oldest first."""
    return list(
        session.scalars(
            select(Sweep)
            .where(Sweep.chain == chain, Sweep.status.in_(OPEN_STATUSES))
            .order_by(Sweep.created_at, Sweep.id)
        )
    )


def locked_sweep(session: Session, sweep_id: str, status: SweepStatus) -> Sweep | None:
    """The job, locked, if it is still in `status`."""
    return session.scalars(
        select(Sweep).where(Sweep.id == sweep_id, Sweep.status == status).with_for_update()
    ).one_or_none()


def attempts(session: Session, sweep_id: str, phase: SweepPhase) -> list[SweepTransaction]:
    """The transactions of a job's phase, the first signed first: one, or a transaction and
    its replacements (the same nonce, fees raised)."""
    return list(
        session.scalars(
            select(SweepTransaction)
            .where(SweepTransaction.sweep_id == sweep_id, SweepTransaction.phase == phase)
            .order_by(SweepTransaction.signed_at, SweepTransaction.tx_hash)
        )
    )


def known_hashes(session: Session, hashes: Collection[str]) -> set[str]:
    """Which of `hashes` are sweep transactions."""
    if not hashes:
        return set()
    return set(
        session.scalars(
            select(SweepTransaction.tx_hash).where(SweepTransaction.tx_hash.in_(list(hashes)))
        )
    )


def sweeps_of(
    session: Session, chain: str, kind: SweepKind, statuses: Sequence[SweepStatus] | None = None
) -> list[Sweep]:
    query = select(Sweep).where(Sweep.chain == chain, Sweep.kind == kind)
    if statuses is not None:
        query = query.where(Sweep.status.in_(statuses))
    return list(session.scalars(query.order_by(Sweep.created_at, Sweep.id)))


@dataclass(frozen=True)
class Unsent:
    """A transaction of an open job as stored, with the job's kind and amount."""

    sweep_id: str
    kind: SweepKind
    asset: str
    amount: int
    phase: str
    tx_hash: str


def open_transactions(session: Session, chain: str) -> list[Unsent]:
    """The transactions of the chain's open jobs that have no final receipt recorded."""
    rows = session.execute(
        select(Sweep.id, Sweep.kind, Sweep.asset, Sweep.amount, SweepTransaction)
        .join(SweepTransaction, SweepTransaction.sweep_id == Sweep.id)
        .where(
            Sweep.chain == chain,
            Sweep.status.in_(OPEN_STATUSES),
            SweepTransaction.block_number.is_(None),
        )
    )
    return [
        Unsent(sweep_id, SweepKind(kind), asset, int(amount), tx.phase, tx.tx_hash)
        for sweep_id, kind, asset, amount, tx in rows
    ]


@dataclass(frozen=True)
class SentFrom:
    """An unmined transaction an address signed for an open job: the job's asset and amount,
    its phase, and the signed bytes of its latest attempt."""

    asset: str
    amount: int
    phase: str
    raw_transaction: bytes


def unmined_sent_from(session: Session, chain: str, sender: str) -> list[SentFrom]:
    """The latest attempt at each nonce `sender` signed for the chain's open jobs, when no
    attempt at that nonce is mined yet: what may still leave `sender`."""
    mined = (
        select(SweepTransaction.nonce)
        .where(
            SweepTransaction.sweep_id == Sweep.id,
            SweepTransaction.sender == sender,
            SweepTransaction.block_number.is_not(None),
        )
        .correlate(Sweep)
    )
    rows = session.execute(
        select(Sweep.asset, Sweep.amount, SweepTransaction.phase, SweepTransaction.raw_transaction)
        .join(SweepTransaction, SweepTransaction.sweep_id == Sweep.id)
        .where(
            Sweep.chain == chain,
            Sweep.status.in_(OPEN_STATUSES),
            SweepTransaction.sender == sender,
            SweepTransaction.block_number.is_(None),
            SweepTransaction.nonce.not_in(mined),
        )
        .ext(distinct_on(SweepTransaction.nonce))
        .order_by(SweepTransaction.nonce, SweepTransaction.signed_at.desc())
    )
    return [SentFrom(asset, int(amount), phase, bytes(raw)) for asset, amount, phase, raw in rows]


_SYSTEM_POSTED = text(
    "SELECT asset, posted FROM accounts WHERE system_name = :name AND wallet_id IS NULL"
)


def system_posted(session: Session, name: str) -> dict[str, int]:
    """The posted balance of each asset's system account `name`."""
    return {asset: int(posted) for asset, posted in session.execute(_SYSTEM_POSTED, {"name": name})}


_UNCREDITED_DEPOSITS = text(
    """
    SELECT asset, sum(amount) FROM deposits
    WHERE chain = :chain AND status IN ('seen', 'below_minimum') GROUP BY asset
    """
)

_MINED_UNSETTLED_WITHDRAWALS = text(
    """
    SELECT asset, coalesce(sum(amount) FILTER (WHERE succeeded), 0), sum(network_fee)
    FROM withdrawals
    WHERE chain = :chain AND status = 'broadcast' AND block_number IS NOT NULL GROUP BY asset
    """
)


def uncredited_deposits(session: Session, chain: str) -> dict[str, int]:
    """Per asset, what deposits hold on the chain that the ledger has not posted: seen and
    not yet credited, or below the minimum (recorded, never credited)."""
    return {a: int(total) for a, total in session.execute(_UNCREDITED_DEPOSITS, {"chain": chain})}


@dataclass(frozen=True)
class MinedWithdrawals:
    asset: str
    amount: int
    network_fee: int


def mined_unsettled_withdrawals(session: Session, chain: str) -> list[MinedWithdrawals]:
    """Per asset, withdrawals the watcher saw mined and has not yet posted (waiting for
    confirmations): their amount (if the transaction succeeded) and network fee are gone."""
    return [
        MinedWithdrawals(asset, int(amount), int(fee))
        for asset, amount, fee in session.execute(_MINED_UNSETTLED_WITHDRAWALS, {"chain": chain})
    ]


def chains_in_use(session: Session) -> list[str]:
    """Chains with deposit addresses or a `chain:<name>` ledger account."""
    return list(
        session.scalars(
            text(
                """
                SELECT chain FROM deposit_addresses
                UNION SELECT substr(system_name, 7) FROM accounts
                WHERE system_name LIKE 'chain:%' AND wallet_id IS NULL
                ORDER BY 1
                """
            )
        )
    )
