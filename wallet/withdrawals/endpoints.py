"""Crypto withdrawals over HTTP: request, read, list, cancel, approve.

Mounted by `wallet.api.app.create_app`, which also puts the process's `WithdrawalRules`, fee
quoter and batcher of requests on `app.state.withdrawal_rules`, `app.state.withdrawal_fees`
and `app.state.withdrawal_batches`.
"""

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from wallet.api.auth import Operator, Reader, Withdrawer
from wallet.api.contract import link
from wallet.api.dependencies import (
    CatalogueDep,
    DbSession,
    RuntimeDep,
    bank_of,
    known_query_parameters,
)
from wallet.api.fields import id_pattern
from wallet.api.idempotent import (
    REPLAY_HEADERS,
    RequiredIdempotencyKey,
    request_key,
    respond,
    respond_once,
)
from wallet.api.pagination import (
    Limit,
    Page,
    Position,
    cursor_query,
    decode_cursor,
    page_and_cursor,
)
from wallet.api.problems import problem_responses
from wallet.banking.service import FeeSchedule
from wallet.batching import Batcher
from wallet.database import run_transaction
from wallet.errors import WalletError
from wallet.idempotency.service import Outcome, record_failure
from wallet.payouts.schemas import BankAccountDestination, PayoutOut
from wallet.payouts.service import request_payout
from wallet.withdrawals.models import WITHDRAWAL_PREFIX, WithdrawalStatus
from wallet.withdrawals.repository import approval_counts, get_withdrawal, list_withdrawals
from wallet.withdrawals.requesting import Internal, KeyedWithdrawal
from wallet.withdrawals.schemas import WithdrawalOut, WithdrawalRequest
from wallet.withdrawals.service import (
    CheckedRequest,
    NodeFeeQuoter,
    WithdrawalRules,
    approve_withdrawal,
    cancel_withdrawal,
    check_request,
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


OPERATION = "POST /v1/withdrawals"
WithdrawalBatches = Batcher[KeyedWithdrawal, Outcome | WalletError | Literal[Internal.INTERNAL]]


async def rules(request: Request) -> WithdrawalRules:
    return cast(WithdrawalRules, request.app.state.withdrawal_rules)


async def fee_quoter(request: Request) -> NodeFeeQuoter:
    return cast(NodeFeeQuoter, request.app.state.withdrawal_fees)


async def withdrawal_batches(request: Request) -> WithdrawalBatches:
    return cast(WithdrawalBatches, request.app.state.withdrawal_batches)


@router.post(
    "",
    status_code=201,
    response_model=WithdrawalOut | PayoutOut,
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
async def create(
    body: WithdrawalRequest,
    request: Request,
    *,
    idempotency_key: RequiredIdempotencyKey,
    principal: Withdrawer,
    runtime: RuntimeDep,
    withdrawal_rules: Annotated[WithdrawalRules, Depends(rules)],
    quote: Annotated[NodeFeeQuoter, Depends(fee_quoter)],
    batches: Annotated[WithdrawalBatches, Depends(withdrawal_batches)],
) -> JSONResponse:
    """Hold amount plus the quoted fee and queue the withdrawal (or wait for approvals); to
    one of this service's deposit addresses it is completed at once. Emits
    `withdrawal.requested` (`withdrawal.completed` for an internal one).

    To a bank account (`{"type": "bank_account", "bank_account_id": "bac_..."}`) it is a
    payout (`pot_...`, read at `/v1/payouts`): amount plus the payout fee held, sent to the
    bank by the worker; `payout.*` events."""
    catalogue = runtime.catalogue
    destination = body.destination

    def action(session: Session) -> dict[str, Any]:
        if isinstance(destination, BankAccountDestination):
            payout = request_payout(
                session,
                principal.tenant_id,
                wallet_id=body.wallet_id,
                bank_account_id=destination.bank_account_id,
                asset_code=body.asset,
                amount=body.amount,
                provider=bank_of(request).name,
                fees=FeeSchedule(runtime.settings.fiat_fees),
                catalogue=catalogue,
            )
            return PayoutOut.of(payout, catalogue.asset(payout.asset)).model_dump(mode="json")
        withdrawal = request_withdrawal(
            session,
            principal.tenant_id,
            principal.key_id,
            body.to_crypto(destination),
            catalogue=catalogue,
            rules=withdrawal_rules,
            quote=quote,
        )
        return out(session, catalogue, withdrawal).model_dump(mode="json")

    def in_session(session: Session) -> JSONResponse:
        return respond_once(
            session,
            principal,
            idempotency_key,
            operation=OPERATION,
            body=body,
            status_code=201,
            action=lambda: action(session),
        )

    if isinstance(destination, BankAccountDestination):
        return await run_in_threadpool(_in_own_session, runtime.sessions, in_session)
    key = request_key(principal, idempotency_key, OPERATION, body)
    answer: Outcome | WalletError | Literal[Internal.INTERNAL]
    try:
        crypto = body.to_crypto(destination)
        checked = check_request(catalogue, withdrawal_rules, crypto)
    except WalletError as error:
        answer = error
    else:
        fee = await _fee(checked, quote)
        keyed = KeyedWithdrawal(principal.tenant_id, principal.key_id, crypto, checked, fee, key)
        answer = await batches.submit(keyed)
    if isinstance(answer, Internal):
        return await run_in_threadpool(_in_own_session, runtime.sessions, in_session)
    if isinstance(answer, WalletError):
        # The failure becomes the key's outcome, unless the key has one (a conflict is one).
        record = partial(record_failure, key=key, error=answer)
        recorded = await run_in_threadpool(run_transaction, runtime.sessions, record)
        return respond(recorded, status_code=201)
    return respond(answer, status_code=201)


async def _fee(checked: CheckedRequest, quote: NodeFeeQuoter) -> int | WalletError:
    """The request's fee at the chain's shared quote, or at a new one from its node."""
    try:
        fees = quote.cached(checked.chain)
        if fees is None:
            fees = await run_in_threadpool(quote, checked.chain)
        return checked.fee(fees)
    except WalletError as error:
        return error


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


def _in_own_session(
    sessions: sessionmaker[Session], work: Callable[[Session], JSONResponse]
) -> JSONResponse:
    """`work` on a session of its own, committed after it, as the request's session is:
    `work` retries a lost race itself, on the same session (`retry_lost_races`)."""
    with sessions() as session:
        response = work(session)
        session.commit()
        return response
