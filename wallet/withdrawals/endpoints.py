"""Crypto withdrawals over HTTP: request, read, list, cancel, approve.

Mounted by `wallet.api.app.create_app`, which also puts the process's `WithdrawalRules` and
fee quoter on `app.state.withdrawal_rules` and `app.state.withdrawal_fees`.
"""

from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from wallet.api.auth import Operator, Reader, Withdrawer
from wallet.api.contract import link
from wallet.api.dependencies import CatalogueDep, DbSession, known_query_parameters
from wallet.api.fields import id_pattern
from wallet.api.idempotent import REPLAY_HEADERS, RequiredIdempotencyKey, respond_once
from wallet.api.pagination import (
    Limit,
    Page,
    Position,
    cursor_query,
    decode_cursor,
    page_and_cursor,
)
from wallet.api.problems import problem_responses
from wallet.withdrawals.models import WITHDRAWAL_PREFIX, WithdrawalStatus
from wallet.withdrawals.repository import approval_counts, get_withdrawal, list_withdrawals
from wallet.withdrawals.schemas import WithdrawalCreate, WithdrawalOut
from wallet.withdrawals.service import (
    FeeQuoter,
    WithdrawalRules,
    approve_withdrawal,
    cancel_withdrawal,
    out,
    out_with,
    request_withdrawal,
)

router = APIRouter(
    dependencies=[Depends(known_query_parameters)],
    prefix="/v1/withdrawals",
    tags=["withdrawals"],
    responses=problem_responses(400, 401, 403, 422, 500),
)

WithdrawalIdPath = Annotated[
    str, Path(pattern=id_pattern(WITHDRAWAL_PREFIX), description="A withdrawal id (`wdr_...`).")
]


def rules(request: Request) -> WithdrawalRules:
    return cast(WithdrawalRules, request.app.state.withdrawal_rules)


def fee_quoter(request: Request) -> FeeQuoter:
    return cast(FeeQuoter, request.app.state.withdrawal_fees)


@router.post(
    "",
    status_code=201,
    response_model=WithdrawalOut,
    summary="Request a withdrawal",
    responses={
        201: {
            "headers": REPLAY_HEADERS,
            "links": {
                "GetWithdrawal": link(
                    "withdrawals_get", "The withdrawal.", withdrawal_id="$response.body#/id"
                ),
                "CancelWithdrawal": link(
                    "withdrawals_cancel", "Cancel it.", withdrawal_id="$response.body#/id"
                ),
                "ApproveWithdrawal": link(
                    "withdrawals_approve", "Approve it.", withdrawal_id="$response.body#/id"
                ),
            },
        },
        **problem_responses(404, 409, 503),
    },
)
def create(
    body: WithdrawalCreate,
    *,
    idempotency_key: RequiredIdempotencyKey,
    principal: Withdrawer,
    session: DbSession,
    catalogue: CatalogueDep,
    withdrawal_rules: Annotated[WithdrawalRules, Depends(rules)],
    quote: Annotated[FeeQuoter, Depends(fee_quoter)],
) -> JSONResponse:
    """Hold amount plus the quoted fee and queue the withdrawal (or wait for approvals); to
    one of this service's deposit addresses it is completed at once. Emits
    `withdrawal.requested` (`withdrawal.completed` for an internal one)."""

    def action() -> dict[str, Any]:
        withdrawal = request_withdrawal(
            session,
            principal.tenant_id,
            principal.key_id,
            body,
            catalogue=catalogue,
            rules=withdrawal_rules,
            quote=quote,
        )
        return out(session, catalogue, withdrawal).model_dump(mode="json")

    return respond_once(
        session,
        principal,
        idempotency_key,
        operation="POST /v1/withdrawals",
        body=body,
        status_code=201,
        action=action,
    )


@router.get("", name="list", summary="List withdrawals")
def list_withdrawals_of_tenant(
    principal: Reader,
    session: DbSession,
    catalogue: CatalogueDep,
    *,
    wallet_id: Annotated[
        str | None, Query(pattern=id_pattern("wal"), description="Only this wallet's.")
    ] = None,
    status: Annotated[WithdrawalStatus | None, Query(description="Only in this state.")] = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, cursor_query(id_pattern(WITHDRAWAL_PREFIX))] = None,
) -> Page[WithdrawalOut]:
    """The tenant's withdrawals, newest first."""
    after = decode_cursor(cursor) if cursor is not None else None
    found = list_withdrawals(
        session,
        principal.tenant_id,
        wallet_id=wallet_id,
        status=status,
        after=None if after is None else (after.created_at, after.id),
        limit=limit + 1,
    )
    page, next_cursor = page_and_cursor(found, limit, lambda w: Position(w.created_at, w.id))
    counts = approval_counts(session, [w.id for w in page])
    return Page(data=[out_with(catalogue, w, counts[w.id]) for w in page], next_cursor=next_cursor)


@router.get("/{withdrawal_id}", summary="Get a withdrawal", responses=problem_responses(404))
def get(
    withdrawal_id: WithdrawalIdPath, principal: Reader, session: DbSession, catalogue: CatalogueDep
) -> WithdrawalOut:
    return out(session, catalogue, get_withdrawal(session, principal.tenant_id, withdrawal_id))


@router.post(
    "/{withdrawal_id}/cancel",
    summary="Cancel a withdrawal not yet signed",
    responses=problem_responses(404, 409),
)
def cancel(
    withdrawal_id: WithdrawalIdPath,
    principal: Withdrawer,
    session: DbSession,
    catalogue: CatalogueDep,
) -> WithdrawalOut:
    """Release the hold; refused once the transaction is signed. Emits `withdrawal.cancelled`."""
    withdrawal = cancel_withdrawal(session, principal.tenant_id, withdrawal_id, catalogue)
    return out(session, catalogue, withdrawal)


@router.post(
    "/{withdrawal_id}/approve",
    summary="Approve a withdrawal waiting for an operator",
    responses=problem_responses(404, 409),
)
def approve(
    withdrawal_id: WithdrawalIdPath,
    principal: Operator,
    session: DbSession,
    catalogue: CatalogueDep,
) -> WithdrawalOut:
    """One operator's approval; the key that requested it cannot approve, and a second
    approval must come from another key. Emits `withdrawal.approved`."""
    withdrawal = approve_withdrawal(
        session, principal.tenant_id, withdrawal_id, principal.key_id, catalogue
    )
    return out(session, catalogue, withdrawal)
