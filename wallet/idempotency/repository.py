"""The idempotency keys' queries."""

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

_CLAIM = text(
    "INSERT INTO idempotency_keys (scope, key, request_hash) VALUES (:scope, :key, :hash) "
    "ON CONFLICT DO NOTHING RETURNING 1"
)
_READ = text(
    "SELECT request_hash, outcome FROM idempotency_keys WHERE scope = :scope AND key = :key"
)
_RECORD = text(
    "UPDATE idempotency_keys SET outcome = CAST(:outcome AS jsonb) "
    "WHERE scope = :scope AND key = :key"
)


def claim(session: Session, scope: str, key: str, request_hash: str) -> bool:
    """Claim the key for a request; False if it was claimed before (it is then locked by
    its first claim until that commits, and readable after)."""
    params = {"scope": scope, "key": key, "hash": request_hash}
    return session.execute(_CLAIM, params).first() is not None


def stored(session: Session, scope: str, key: str) -> tuple[str, dict[str, Any] | None]:
    """The request hash and the outcome stored under a claimed key."""
    row = session.execute(_READ, {"scope": scope, "key": key}).one()
    return row.request_hash, row.outcome


def record(session: Session, scope: str, key: str, outcome: str) -> None:
    """Store the JSON `outcome` under a key this transaction claimed."""
    session.execute(_RECORD, {"scope": scope, "key": key, "outcome": outcome})
