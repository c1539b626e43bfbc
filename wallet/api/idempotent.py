"""`Idempotency-Key` on POSTs: a retry with the same key gets the first answer back.

Keys are per tenant. The stored request is the operation and its body, so reusing a key for
another request, on the same route or another one, is a 409 problem. The first answer, a
success or a business failure, is stored in the request's transaction and replayed with its
status and body and an `Idempotent-Replayed: true` header.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from wallet.api.auth import Principal
from wallet.api.dependencies import retry_lost_races
from wallet.api.problems import problem_response
from wallet.errors import WalletError
from wallet.idempotency.service import IdempotencyKey, Outcome, run_once

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

_KEY_DESCRIPTION = (
    "A unique string of your choice (a UUID works) naming this request; retry with the same "
    "key to get the first answer back instead of doing the work twice."
)


class IdempotencyKeyRequired(WalletError):
    status_code = 400
    problem = "idempotency-key-required"
    title = "This request moves money and needs an Idempotency-Key header"


RequiredIdempotencyKey = Annotated[
    str,
    Header(
        alias=IDEMPOTENCY_KEY_HEADER, min_length=1, max_length=255, description=_KEY_DESCRIPTION
    ),
]
OptionalIdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_KEY_HEADER, min_length=1, max_length=255, description=_KEY_DESCRIPTION
    ),
]

REPLAY_HEADERS: dict[str, Any] = {
    REPLAYED_HEADER: {
        "description": "`true` when this is the stored answer to an earlier request with the key.",
        "schema": {"type": "string", "enum": ["true", "false"]},
    }
}


def respond_once(
    session: Session,
    principal: Principal,
    key: str | None,
    *,
    operation: str,
    body: BaseModel,
    status_code: int,
    action: Callable[[], dict[str, Any]],
) -> JSONResponse:
    """Answer with `action`'s JSON, or with the stored answer to an earlier request with `key`.

    Without a key the action simply runs, and its errors propagate.
    """
    if key is None:
        return JSONResponse(retry_lost_races(session, action), status_code=status_code)
    idempotency_key = request_key(principal, key, operation, body)
    outcome = retry_lost_races(session, lambda: run_once(session, idempotency_key, action))
    return respond(outcome, status_code)


def request_key(principal: Principal, key: str, operation: str, body: BaseModel) -> IdempotencyKey:
    """The tenant's `key` for this operation with this body."""
    return IdempotencyKey.for_request(
        principal.tenant_id, key, {"operation": operation, "body": body.model_dump(mode="json")}
    )


def respond(outcome: Outcome, status_code: int) -> JSONResponse:
    """The outcome as the answer: its value with `status_code`, or its problem."""
    headers = {REPLAYED_HEADER: "true" if outcome.replayed else "false"}
    if outcome.problem is not None:
        return problem_response(outcome.problem, headers)
    return JSONResponse(outcome.value, status_code=status_code, headers=headers)
