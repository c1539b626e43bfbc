"""The wallets' queries."""

from datetime import datetime

from sqlalchemy import select, text, tuple_
from sqlalchemy.orm import Session

from wallet.wallets.models import Wallet


def find_wallet(session: Session, tenant_id: str, wallet_id: str, *, lock: bool) -> Wallet | None:
    query = select(Wallet).where(Wallet.id == wallet_id, Wallet.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def lock_status(session: Session, tenant_id: str, wallet_id: str) -> str | None:
    return session.execute(
        text("SELECT status FROM wallets WHERE id = :id AND tenant_id = :tenant FOR NO KEY UPDATE"),
        {"id": wallet_id, "tenant": tenant_id},
    ).scalar_one_or_none()


def share_lock_statuses(session: Session, wallet_ids: list[str]) -> dict[str, str]:
    rows = session.execute(
        text("SELECT id, status FROM wallets WHERE id = ANY(:ids) ORDER BY id FOR SHARE"),
        {"ids": wallet_ids},
    )
    return {row.id: row.status for row in rows}


def tenant_wallets(
    session: Session,
    tenant_id: str,
    owner_ref: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Wallet]:
    """The tenant's wallets (`owner_ref`'s only, when given), newest first, after `after`."""
    query = select(Wallet).where(Wallet.tenant_id == tenant_id)
    if owner_ref is not None:
        query = query.where(Wallet.owner_ref == owner_ref)
    if after is not None:
        query = query.where(tuple_(Wallet.created_at, Wallet.id) < tuple_(*after))
    query = query.order_by(Wallet.created_at.desc(), Wallet.id.desc()).limit(limit)
    return list(session.scalars(query))
