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

from sqlalchemy.orm import Session

from wallet.errors import WalletError, error_from_problem
from wallet.idempotency import repository
from wallet.idempotency.errors import IdempotencyConflict


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
    if not repository.claim(session, key.scope, key.key, key.request_hash):
        return _replay(session, key)
    try:
        with session.begin_nested():
            outcome = Outcome(value=action(), problem=None)
    except WalletError as error:
        if error.status_code >= 500:
            raise  # not an answer but "not now": the caller's rollback frees the key
        outcome = Outcome(value=None, problem=error.to_problem())
    repository.record(session, key.scope, key.key, json.dumps(outcome.to_json()))
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


def once_answer(
    key: IdempotencyKey,
    answer: Mapping[str, Any],
    refusal: Callable[[dict[str, Any]], WalletError],
) -> Outcome | IdempotencyConflict:
    """The outcome of a request made by a database function that claims its key
    (`transfer_once`, `withdrawals_once`, `payins_once`), from that function's answer:
    `{"refused": failure}` (refused now; the failure is what the key keeps),
    `{"replayed": false, "outcome"}` (made now), or `{"replayed": true, "request_hash",
    "outcome"}` (the key was used before: what it keeps, or the conflict if the request differs).
    `refusal` renders a kept failure as the error it answers, in the caller's terms."""
    if "refused" in answer:
        return Outcome(value=None, problem=refusal(answer["refused"]).to_problem())
    if not answer["replayed"]:
        made = answer["outcome"]
        return Outcome(value=made["value"], problem=made["problem"])
    stored = answer["outcome"]
    if stored is not None and "refused" in stored:
        stored = {"value": None, "problem": refusal(stored["refused"]).to_problem()}
    try:
        return replayed(key, answer["request_hash"], stored)
    except IdempotencyConflict as conflict:
        return conflict


def _replay(session: Session, key: IdempotencyKey) -> Outcome:
    request_hash, stored = repository.stored(session, key.scope, key.key)
    return replayed(key, request_hash, stored)
