"""Idempotency keys: a replay returns the first outcome, failures included.

The key, a hash of the request and the outcome are written in the caller's database
transaction, so they commit together with whatever the request changed. A second call with the
same key blocks on the key's row until the first commits, then reads its outcome.
"""

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from wallet.errors import Conflict, WalletError, error_from_problem


class IdempotencyConflict(Conflict):
    problem = "idempotency-key-reused"
    title = "The idempotency key was used with a different request"


@dataclass(frozen=True)
class IdempotencyKey:
    scope: str
    key: str
    request_hash: str

    @classmethod
    def for_request(cls, scope: str, key: str, request: Mapping[str, Any]) -> "IdempotencyKey":
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
        return cls(scope, key, hashlib.sha256(canonical.encode()).hexdigest())


@dataclass(frozen=True)
class Outcome:
    """What a request produced: a JSON value, or the problem it failed with."""

    value: dict[str, Any] | None
    problem: dict[str, Any] | None
    replayed: bool = False

    def unwrap(self) -> dict[str, Any]:
        if self.problem is not None:
            raise error_from_problem(self.problem)
        assert self.value is not None
        return self.value

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "problem": self.problem}


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


def run_once(
    session: Session, key: IdempotencyKey | None, action: Callable[[], dict[str, Any]]
) -> Outcome:
    """Run `action` unless `key` was seen; a business failure is kept as the outcome too.

    With a key, the action runs inside a savepoint, so a failure leaves nothing of it behind
    while the key and the failure are still committed by the caller. Without one, errors
    simply propagate, as do errors of the service (5xx, such as a node that cannot quote a
    fee now): a retry under the same key tries again.
    """
    if key is None:
        return Outcome(value=action(), problem=None)
    params = {"scope": key.scope, "key": key.key, "hash": key.request_hash}
    if session.execute(_CLAIM, params).first() is None:
        return _replay(session, key)
    try:
        with session.begin_nested():
            outcome = Outcome(value=action(), problem=None)
    except WalletError as error:
        if error.status_code >= 500:
            raise  # not an answer but "not now": the caller's rollback frees the key
        outcome = Outcome(value=None, problem=error.to_problem())
    session.execute(
        _RECORD, {"scope": key.scope, "key": key.key, "outcome": json.dumps(outcome.to_json())}
    )
    return outcome


def record_failure(session: Session, key: IdempotencyKey, error: WalletError) -> Outcome:
    """Keep `error` as the outcome under `key`, unless the key has one already (then that)."""

    def fail() -> dict[str, Any]:
        raise error

    return run_once(session, key, fail)


def replayed(key: IdempotencyKey, request_hash: str, stored: dict[str, Any] | None) -> Outcome:
    """The outcome stored under `key` for a request with `request_hash`, for a retry of `key`.

    Raises `IdempotencyConflict` if the stored request is another one (or, for a key claimed
    without an outcome, may be).
    """
    if request_hash != key.request_hash or stored is None:
        raise IdempotencyConflict(f"idempotency key {key.key!r} was used for another request")
    return Outcome(value=stored["value"], problem=stored["problem"], replayed=True)


def _replay(session: Session, key: IdempotencyKey) -> Outcome:
    stored = session.execute(_READ, {"scope": key.scope, "key": key.key}).one()
    return replayed(key, stored.request_hash, stored.outcome)
