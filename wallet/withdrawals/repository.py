"""The withdrawals' queries: one withdrawal, lists, sums for limits, approvals, nonces."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import func, select, text, tuple_
from sqlalchemy.orm import Session

from wallet.deposits.models import DepositAddress
from wallet.withdrawals.errors import UnknownWithdrawal
from wallet.withdrawals.models import (
    OPEN_STATUSES,
    Withdrawal,
    WithdrawalApproval,
    WithdrawalAttempt,
    WithdrawalStatus,
)


def get_withdrawal(
    session: Session, tenant_id: str, withdrawal_id: str, *, lock: bool = False
) -> Withdrawal:
    """The tenant's withdrawal; another tenant's id is answered as unknown."""
    query = select(Withdrawal).where(
        Withdrawal.id == withdrawal_id, Withdrawal.tenant_id == tenant_id
    )
    if lock:
        query = query.with_for_update()
    withdrawal = session.scalars(query).one_or_none()
    if withdrawal is None:
        raise UnknownWithdrawal(f"no withdrawal {withdrawal_id}")
    return withdrawal


def locked_withdrawal(
    session: Session, withdrawal_id: str, statuses: Sequence[WithdrawalStatus] | None = None
) -> Withdrawal | None:
    """The withdrawal, locked, if it is in one of `statuses`. With `statuses`, a row another
    transaction holds is skipped (None): someone else is moving it on."""
    query = select(Withdrawal).where(Withdrawal.id == withdrawal_id)
    if statuses is None:
        return session.scalars(query.with_for_update()).one_or_none()
    query = query.where(Withdrawal.status.in_(statuses)).with_for_update(skip_locked=True)
    return session.scalars(query).one_or_none()


def lock_withdrawals(session: Session, withdrawal_ids: Sequence[str]) -> dict[str, Withdrawal]:
    """The withdrawals, by id, each locked (in id order) to the end of the transaction."""
    query = (
        select(Withdrawal)
        .where(Withdrawal.id.in_(withdrawal_ids))
        .order_by(Withdrawal.id)
        .with_for_update()
    )
    return {withdrawal.id: withdrawal for withdrawal in session.scalars(query)}


def locked_withdrawals(
    session: Session, withdrawal_ids: Sequence[str], statuses: Sequence[WithdrawalStatus]
) -> list[Withdrawal]:
    """Those of the withdrawals in `statuses`, locked, in the order of `withdrawal_ids`; rows
    another transaction holds are skipped: someone else is moving them on."""
    query = (
        select(Withdrawal)
        .where(Withdrawal.id.in_(withdrawal_ids), Withdrawal.status.in_(statuses))
        .with_for_update(skip_locked=True)
    )
    found = {withdrawal.id: withdrawal for withdrawal in session.scalars(query)}
    return [found[i] for i in withdrawal_ids if i in found]


def list_withdrawals(
    session: Session,
    tenant_id: str,
    *,
    wallet_id: str | None,
    status: WithdrawalStatus | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[Withdrawal]:
    """The tenant's withdrawals, newest first, after (created_at, id)."""
    query = select(Withdrawal).where(Withdrawal.tenant_id == tenant_id)
    if wallet_id is not None:
        query = query.where(Withdrawal.wallet_id == wallet_id)
    if status is not None:
        query = query.where(Withdrawal.status == status)
    if after is not None:
        query = query.where(tuple_(Withdrawal.created_at, Withdrawal.id) < tuple_(*after))
    return session.scalars(
        query.order_by(Withdrawal.created_at.desc(), Withdrawal.id.desc()).limit(limit)
    ).all()


def approval_counts(session: Session, withdrawal_ids: Sequence[str]) -> dict[str, int]:
    rows = session.execute(
        select(WithdrawalApproval.withdrawal_id, func.count())
        .where(WithdrawalApproval.withdrawal_id.in_(withdrawal_ids))
        .group_by(WithdrawalApproval.withdrawal_id)
    ).all()
    counts = dict.fromkeys(withdrawal_ids, 0)
    counts.update({withdrawal_id: int(count) for withdrawal_id, count in rows})
    return counts


def approvers(session: Session, withdrawal_id: str) -> set[str]:
    return set(
        session.scalars(
            select(WithdrawalApproval.key_id).where(
                WithdrawalApproval.withdrawal_id == withdrawal_id
            )
        )
    )


_COUNTED = (*OPEN_STATUSES, WithdrawalStatus.CONFIRMED, WithdrawalStatus.COMPLETED)


def sent_since(session: Session, wallet_id: str, asset: str, since: datetime) -> int:
    """What the wallet withdrew of `asset` since `since`, counting those still under way."""
    total = session.execute(
        select(func.coalesce(func.sum(Withdrawal.amount), 0)).where(
            Withdrawal.wallet_id == wallet_id,
            Withdrawal.asset == asset,
            Withdrawal.created_at > since,
            Withdrawal.status.in_(_COUNTED),
        )
    ).scalar_one()
    return int(total)


# The withdrawal requests' postings are `ledger_hold`'s, called by `withdrawals_once` (both in
# wallet/sql/functions); refusals come back as ledger_hold's failures, plus the wallets' and
# the rolling limit's.
_ONCE = "SELECT withdrawals_once(%s::jsonb, %s, %s)"


def withdrawals_once(
    connection: psycopg.Connection[Any], requests: str, event_type: str
) -> list[dict[str, Any]]:
    """`withdrawals_once` on a JSON list of keyed requests: one answer per request, in order.
    The rolling limit counts the withdrawals `sent_since` counts."""
    row = connection.execute(_ONCE, (requests, event_type, list(_COUNTED))).fetchone()
    assert row is not None
    answers: list[dict[str, Any]] = row[0]
    return answers


def deposit_address_wallet(session: Session, chain: str, address: str) -> str | None:
    """The wallet whose deposit address on `chain` is `address` (lowercase), if any."""
    return session.scalars(
        select(DepositAddress.wallet_id).where(
            DepositAddress.chain == chain, DepositAddress.address == address
        )
    ).one_or_none()


_LOCK_NONCE = text(
    "SELECT next_nonce FROM hot_wallet_nonces WHERE chain = :chain AND address = :address "
    "FOR UPDATE"
)


def lock_next_nonce(session: Session, chain: str, address: str) -> int | None:
    """The hot wallet's next nonce, its row locked to the end of the transaction, so one
    nonce is handed out at a time; None before the hot wallet's first withdrawal."""
    found = session.execute(_LOCK_NONCE, {"chain": chain, "address": address}).scalar()
    return None if found is None else int(found)


def start_nonces(session: Session, chain: str, address: str, first: int) -> None:
    """Create the hot wallet's nonce row at `first` (the chain's count), unless it exists."""
    session.execute(
        text(
            "INSERT INTO hot_wallet_nonces (chain, address, next_nonce) "
            "VALUES (:chain, :address, :first) ON CONFLICT DO NOTHING"
        ),
        {"chain": chain, "address": address, "first": first},
    )


def set_next_nonce(session: Session, chain: str, address: str, next_nonce: int) -> None:
    session.execute(
        text(
            "UPDATE hot_wallet_nonces SET next_nonce = :next "
            "WHERE chain = :chain AND address = :address"
        ),
        {"chain": chain, "address": address, "next": next_nonce},
    )


@dataclass(frozen=True)
class InFlight:
    """A signed withdrawal of a hot wallet not yet mined, with its latest attempt's gas."""

    asset: str
    amount: int
    gas: int
    max_fee_per_gas: int


def in_flight(session: Session, chain: str, sender: str) -> list[InFlight]:
    """What the hot wallet has signed and not yet seen mined: it may still leave the wallet."""
    rows = session.execute(
        text(
            """
            SELECT w.asset, w.amount, a.gas, a.max_fee_per_gas
            FROM withdrawals w
            CROSS JOIN LATERAL (
                SELECT gas, max_fee_per_gas FROM withdrawal_attempts
                WHERE withdrawal_id = w.id ORDER BY signed_at DESC, tx_hash DESC LIMIT 1
            ) a
            WHERE w.chain = :chain AND w.sender = :sender AND w.block_number IS NULL
              AND w.status IN ('signed', 'broadcast', 'unknown', 'confirmed')
            """
        ),
        {"chain": chain, "sender": sender},
    )
    return [
        InFlight(row.asset, int(row.amount), int(row.gas), int(row.max_fee_per_gas)) for row in rows
    ]


def outgoing(
    session: Session,
    chain: str,
    statuses: Sequence[WithdrawalStatus],
    limit: int,
    excluding: Sequence[str] = (),
) -> list[str]:
    """Ids of the chain's withdrawals in `statuses` but not in `excluding`, in nonce order,
    then oldest first."""
    return list(
        session.scalars(
            select(Withdrawal.id)
            .where(
                Withdrawal.chain == chain,
                Withdrawal.status.in_(statuses),
                Withdrawal.id.not_in(excluding),
            )
            .order_by(Withdrawal.nonce.nulls_last(), Withdrawal.created_at, Withdrawal.id)
            .limit(limit)
        )
    )


def hot_wallets(session: Session, chain: str) -> list[str]:
    """The hot wallet addresses that sent withdrawals on `chain` (lowercase)."""
    return list(
        session.scalars(
            text("SELECT address FROM hot_wallet_nonces WHERE chain = :chain"), {"chain": chain}
        )
    )


@dataclass(frozen=True)
class SentAttempt:
    """An attempt of an unmined withdrawal, with its withdrawal's status."""

    withdrawal_id: str
    status: WithdrawalStatus
    tx_hash: str
    raw_transaction: bytes
    send_outcome: str | None
    signed_at: datetime
    sent_at: datetime | None


def unmined_attempts(session: Session, chain: str, sender: str) -> dict[str, list[SentAttempt]]:
    """The attempts of the hot wallet's signed or broadcast withdrawals not seen mined, by
    withdrawal in nonce order, each withdrawal's oldest first."""
    rows = session.execute(
        select(Withdrawal.status, WithdrawalAttempt)
        .join(WithdrawalAttempt, WithdrawalAttempt.withdrawal_id == Withdrawal.id)
        .where(
            Withdrawal.chain == chain,
            Withdrawal.sender == sender,
            Withdrawal.block_number.is_(None),
            # A confirmed one without a block left the chain in a deep reorg: sent again.
            Withdrawal.status.in_(
                [WithdrawalStatus.SIGNED, WithdrawalStatus.BROADCAST, WithdrawalStatus.CONFIRMED]
            ),
        )
        .order_by(Withdrawal.nonce, WithdrawalAttempt.signed_at, WithdrawalAttempt.tx_hash)
    ).all()
    found: dict[str, list[SentAttempt]] = {}
    for status, attempt in rows:
        found.setdefault(attempt.withdrawal_id, []).append(
            SentAttempt(
                attempt.withdrawal_id,
                WithdrawalStatus(status),
                attempt.tx_hash,
                attempt.raw_transaction,
                attempt.send_outcome,
                attempt.signed_at,
                attempt.sent_at,
            )
        )
    return found


def attempts_by_hash(session: Session, tx_hashes: Sequence[str]) -> dict[str, WithdrawalAttempt]:
    return {
        attempt.tx_hash: attempt
        for attempt in session.scalars(
            select(WithdrawalAttempt).where(WithdrawalAttempt.tx_hash.in_(tx_hashes))
        )
    }


def attempts_of(session: Session, withdrawal_id: str) -> list[WithdrawalAttempt]:
    """The withdrawal's signed transactions, oldest first."""
    return list(
        session.scalars(
            select(WithdrawalAttempt)
            .where(WithdrawalAttempt.withdrawal_id == withdrawal_id)
            .order_by(WithdrawalAttempt.signed_at, WithdrawalAttempt.tx_hash)
        )
    )
