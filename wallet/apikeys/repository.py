"""The API keys' queries."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wallet.apikeys.models import ApiKey

# It runs on every request: a plain statement on a plain connection, for many requests at once.
_ACTIVE_KEYS = (
    "SELECT secret_hash, id, tenant_id, scopes FROM api_keys "
    "WHERE secret_hash = ANY(%s) AND revoked_at IS NULL"
)


def active_keys(
    connection: psycopg.Connection[Any], hashes: Sequence[str]
) -> list[tuple[str, str, str, list[str]]]:
    """(secret hash, id, tenant, scopes) of the unrevoked keys with these secret hashes."""
    return connection.execute(_ACTIVE_KEYS, (list(hashes),)).fetchall()


def keys(session: Session, tenant_id: str | None) -> Sequence[ApiKey]:
    """Every key, or one tenant's, oldest first."""
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if tenant_id is not None:
        query = query.where(ApiKey.tenant_id == tenant_id)
    return session.scalars(query).all()


def lock_key(session: Session, key_id: str) -> ApiKey | None:
    return session.scalars(
        select(ApiKey).where(ApiKey.id == key_id).with_for_update()
    ).one_or_none()


def transaction_time(session: Session) -> datetime:
    """The database's `now()`: the time of the current transaction."""
    now: datetime = session.execute(select(func.now())).scalar_one()
    return now
