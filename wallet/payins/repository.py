"""Queries of pay-ins."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.orm import Session

from wallet.payins.errors import UnknownPayin
from wallet.payins.models import UNRESOLVED, Payin


def get_payin(session: Session, tenant_id: str, payin_id: str) -> Payin:
    """The tenant's pay-in; another tenant's id is unknown."""
    payin = session.scalars(
        select(Payin).where(Payin.id == payin_id, Payin.tenant_id == tenant_id)
    ).one_or_none()
    if payin is None:
        raise UnknownPayin(f"no pay-in {payin_id}")
    return payin


def find_payin(session: Session, payin_id: str, *, lock: bool = False) -> Payin | None:
    query = select(Payin).where(Payin.id == payin_id)
    if lock:
        # Refresh a copy already in the session: it may predate the lock's wait.
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).one_or_none()


def find_payins(session: Session, payin_ids: Sequence[str]) -> list[Payin]:
    return list(session.scalars(select(Payin).where(Payin.id.in_(payin_ids))))


def list_payins(
    session: Session,
    tenant_id: str,
    *,
    wallet_id: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Payin]:
    """Up to `limit` pay-ins of the tenant (of one wallet if given), newest first."""
    query = select(Payin).where(Payin.tenant_id == tenant_id)
    if wallet_id is not None:
        query = query.where(Payin.wallet_id == wallet_id)
    if after is not None:
        query = query.where(tuple_(Payin.created_at, Payin.id) < tuple_(*after))
    return list(
        session.scalars(query.order_by(Payin.created_at.desc(), Payin.id.desc()).limit(limit))
    )


def unresolved_payin_ids(session: Session, older_than: float, limit: int = 100) -> list[str]:
    """Pay-ins left `creating` or `unknown` for longer than `older_than` seconds."""
    cutoff = func.now() - timedelta(seconds=older_than)
    return list(
        session.scalars(
            select(Payin.id)
            .where(Payin.status.in_(UNRESOLVED), Payin.updated_at <= cutoff)
            .order_by(Payin.updated_at)
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class PayinApplied:
    """`payin_apply`'s answer to one snapshot: `unmatched`, `stale`, `mismatch` or `applied`
    (and whether the status `changed`, whether the wallet was `restricted`); the pay-in as it
    now is."""

    outcome: str
    changed: bool
    restricted: bool
    payin: Payin | None


_PAYINS_ONCE = text("SELECT payins_once(CAST(:requests AS jsonb), :provider)")


def payins_once(
    session: Session, requests: Sequence[dict[str, Any]], provider: str
) -> list[dict[str, Any]]:
    """Record pay-in requests at `provider` with their keys, in one statement: one answer per
    request, in order (wallet/sql/functions/payins_once.sql)."""
    params = {"requests": json.dumps(requests), "provider": provider}
    answers: list[dict[str, Any]] = session.execute(_PAYINS_ONCE, params).scalar_one()
    return answers


_PAYINS_APPLY = text("SELECT payins_apply(:provider, CAST(:items AS jsonb), :bank, :fees)")


def payins_apply(
    session: Session, provider: str, items: Sequence[dict[str, Any]], *, bank: str, fees: str
) -> list[PayinApplied | None]:
    """Move the pay-ins and their ledger entries to the provider's snapshots, in order, in one
    statement; events among the items stored once by id. One answer per item: None for an
    event stored before."""
    params = {"provider": provider, "items": json.dumps(items), "bank": bank, "fees": fees}
    answers: list[dict[str, Any]] = session.execute(_PAYINS_APPLY, params).scalar_one()
    return [None if answer.get("duplicate") else _applied(answer) for answer in answers]


def _applied(answer: dict[str, Any]) -> PayinApplied:
    row = answer.get("payin")
    return PayinApplied(
        answer["outcome"],
        answer.get("changed", False),
        answer.get("restricted", False),
        None if row is None else _detached(row),
    )


def _detached(row: dict[str, Any]) -> Payin:
    """The pay-in of a row as JSON, outside the session."""
    times = {name: datetime.fromisoformat(row[name]) for name in ("created_at", "updated_at")}
    return Payin(**{**row, **times})
