"""Queries of payouts."""

from datetime import datetime, timedelta

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from wallet.payouts.errors import UnknownPayout
from wallet.payouts.models import UNRESOLVED, Payout


def get_payout(session: Session, tenant_id: str, payout_id: str) -> Payout:
    """The tenant's payout; another tenant's id is unknown."""
    payout = session.scalars(
        select(Payout).where(Payout.id == payout_id, Payout.tenant_id == tenant_id)
    ).one_or_none()
    if payout is None:
        raise UnknownPayout(f"no payout {payout_id}")
    return payout


def find_payout(session: Session, payout_id: str, *, lock: bool = False) -> Payout | None:
    query = select(Payout).where(Payout.id == payout_id)
    if lock:
        # Refresh a copy already in the session: it may predate the lock's wait.
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).one_or_none()


def list_payouts(
    session: Session,
    tenant_id: str,
    *,
    wallet_id: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Payout]:
    """Up to `limit` payouts of the tenant (of one wallet if given), newest first."""
    query = select(Payout).where(Payout.tenant_id == tenant_id)
    if wallet_id is not None:
        query = query.where(Payout.wallet_id == wallet_id)
    if after is not None:
        query = query.where(tuple_(Payout.created_at, Payout.id) < tuple_(*after))
    return list(
        session.scalars(query.order_by(Payout.created_at.desc(), Payout.id.desc()).limit(limit))
    )


def unresolved_payout_ids(session: Session, retry_after: float, limit: int = 100) -> list[str]:
    """Payouts to send: `sending` ones never sent, and those `sending` or `unknown` whose last
    attempt began more than `retry_after` seconds ago."""
    cutoff = func.now() - timedelta(seconds=retry_after)
    return list(
        session.scalars(
            select(Payout.id)
            .where(
                Payout.status.in_(UNRESOLVED),
                (Payout.send_attempts == 0) | (Payout.updated_at <= cutoff),
            )
            .order_by(Payout.updated_at)
            .limit(limit)
        )
    )
