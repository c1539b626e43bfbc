"""The withdrawals' queries: one withdrawal, lists, sums for limits, approvals, nonces."""

from collections.abc import Sequence
from datetime import datetime

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


def deposit_address_wallet(session: Session, chain: str, address: str) -> str | None:
    """The wallet whose deposit address on `chain` is `address` (lowercase), if any."""
    return session.scalars(
        select(DepositAddress.wallet_id).where(
            DepositAddress.chain == chain, DepositAddress.address == address
        )
    ).one_or_none()


# Takes the hot wallet's nonce row, creating it from the chain's count on first use; the row
# stays locked until the transaction ends, so one nonce is handed out at a time.
_TAKE_NONCE = text(
    """
    INSERT INTO hot_wallet_nonces AS n (chain, address, next_nonce)
    VALUES (:chain, :address, :first + 1)
    ON CONFLICT (chain, address) DO UPDATE SET next_nonce = n.next_nonce + 1
    RETURNING n.next_nonce - 1
    """
)


def take_nonce(session: Session, chain: str, address: str, first: int) -> int:
    """The next nonce of the hot wallet; `first` is the chain's count, used on first use only."""
    return int(
        session.execute(
            _TAKE_NONCE, {"chain": chain, "address": address, "first": first}
        ).scalar_one()
    )


def hot_wallets(session: Session, chain: str) -> list[str]:
    """The hot wallet addresses that sent withdrawals on `chain` (lowercase)."""
    return list(
        session.scalars(
            text("SELECT address FROM hot_wallet_nonces WHERE chain = :chain"), {"chain": chain}
        )
    )


def attempts_of(session: Session, withdrawal_id: str) -> list[WithdrawalAttempt]:
    """The withdrawal's signed transactions, oldest first."""
    return list(
        session.scalars(
            select(WithdrawalAttempt)
            .where(WithdrawalAttempt.withdrawal_id == withdrawal_id)
            .order_by(WithdrawalAttempt.signed_at, WithdrawalAttempt.tx_hash)
        )
    )
