"""Pay-ins over HTTP: start one, get one, list them."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from fiat import BankProvider, PayinRequest
from wallet.api.auth import Principal, Reader, Transferer
from wallet.api.dependencies import (
    BankDep,
    CatalogueDep,
    DbSession,
    PayinAdmission,
    RuntimeDep,
    known_query_parameters,
)
from wallet.api.fields import WalletFilter, id_pattern
from wallet.api.idempotent import (
    REPLAY_HEADERS,
    REPLAYED_HEADER,
    RequiredIdempotencyKey,
    request_key,
)
from wallet.api.pagination import (
    Limit,
    Page,
    Position,
    cursor_query,
    page_and_cursor,
    resume_after,
)
from wallet.api.problems import problem_response, problem_responses
from wallet.banking.errors import BankUnavailable
from wallet.banking.service import FeeSchedule, run_in_turn
from wallet.idempotency.service import Outcome, run_once
from wallet.payins.models import PAYIN_PREFIX, Payin
from wallet.payins.repository import get_payin, list_payins
from wallet.payins.schemas import PayinCreate, PayinOut
from wallet.payins.service import payin_request, send_payin, start_payin, submit_payin

router = APIRouter(
    dependencies=[Depends(known_query_parameters)],
    tags=["payins"],
    responses=problem_responses(400, 401, 403, 422, 500),
)

PayinIdPath = Annotated[
    str, Path(pattern=id_pattern(PAYIN_PREFIX), description="A pay-in id (`pin_...`).")
]


@router.post(
    "/v1/payins",
    status_code=201,
    summary="Collect money from a linked bank account into a wallet",
    response_model=PayinOut,
    responses={
        201: {"headers": REPLAY_HEADERS},
        **problem_responses(404, 409, 503),
    },
)
async def create(
    body: PayinCreate,
    idempotency_key: RequiredIdempotencyKey,
    principal: Transferer,
    *,
    runtime: RuntimeDep,
    bank: BankDep,
    admission: PayinAdmission,
) -> JSONResponse:
    """The pay-in is created at the bank and shows in the wallet as pending in until the bank
    says it `succeeded`; then the wallet is credited `net_amount`. If the bank does not answer
    in time the status is `unknown` until the service has asked the bank again: never a guess.
    A retry with the same `Idempotency-Key` answers with the same pay-in, as it is now.

    Pay-in requests take turns to reach the bank (`WALLET_PAYIN_REQUESTS_AT_ONCE` at a time
    per API process); one that waits longer than `WALLET_PAYIN_TURN_WAIT` is answered 503
    `bank-unavailable` with nothing started."""
    # Waiting for its turn holds no thread: the bank's webhooks are still answered meanwhile.
    try:
        await asyncio.wait_for(admission.acquire(), runtime.settings.payin_turn_wait)
    except TimeoutError:
        raise BankUnavailable(
            "the pay-ins ahead of this one are still waiting for the bank; nothing was "
            "started: retry with the same Idempotency-Key"
        ) from None
    try:
        return await run_in_threadpool(_create, body, idempotency_key, principal, runtime, bank)
    finally:
        admission.release()


def _create(
    body: PayinCreate,
    idempotency_key: str,
    principal: Principal,
    runtime: RuntimeDep,
    bank: BankProvider,
) -> JSONResponse:
    fees = FeeSchedule(runtime.settings.fiat_fees)
    key = request_key(principal, idempotency_key, "create_payin", body)

    def start(session: Session) -> tuple[Outcome, PayinRequest | None]:
        made: list[PayinRequest] = []

        def record() -> dict[str, str]:
            payin = start_payin(
                session,
                principal.tenant_id,
                body,
                provider=bank.name,
                fees=fees,
                catalogue=runtime.catalogue,
            )
            made.append(payin_request(session, payin))
            return {"payin_id": payin.id}

        return run_once(session, key, record), (made[0] if made else None)

    # The pay-in and its key commit before the bank is asked: a crash after that leaves a
    # pay-in to resolve by asking the bank, never a payment at the bank we do not know of.
    outcome, request = run_in_turn(runtime.sessions, start)
    headers = {REPLAYED_HEADER: "true" if outcome.replayed else "false"}
    if outcome.problem is not None:
        return problem_response(outcome.problem, headers)
    payin_id = outcome.unwrap()["payin_id"]
    if request is not None:
        payin: Payin | None = send_payin(runtime.sessions, bank, request, runtime.catalogue)
    else:  # a retry: the provider may not have been asked yet
        payin = submit_payin(runtime.sessions, bank, payin_id, runtime.catalogue)
    if payin is None:
        payin = run_in_turn(runtime.sessions, lambda s: get_payin(s, principal.tenant_id, payin_id))
    answer = PayinOut.of(payin, runtime.catalogue.asset(payin.asset))
    return JSONResponse(answer.model_dump(mode="json"), status_code=201, headers=headers)


@router.get("/v1/payins", name="list", summary="List pay-ins")
def list_(
    principal: Reader,
    session: DbSession,
    catalogue: CatalogueDep,
    *,
    wallet_id: WalletFilter = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, cursor_query(id_pattern(PAYIN_PREFIX))] = None,
) -> Page[PayinOut]:
    """The tenant's pay-ins, newest first."""
    found = list_payins(
        session,
        principal.tenant_id,
        wallet_id=wallet_id,
        after=resume_after(cursor),
        limit=limit + 1,
    )
    page, next_cursor = page_and_cursor(found, limit, lambda p: Position(p.created_at, p.id))
    return Page(
        data=[PayinOut.of(p, catalogue.asset(p.asset)) for p in page], next_cursor=next_cursor
    )


@router.get("/v1/payins/{payin_id}", summary="Get a pay-in", responses=problem_responses(404))
def get(
    payin_id: PayinIdPath, principal: Reader, session: DbSession, catalogue: CatalogueDep
) -> PayinOut:
    payin = get_payin(session, principal.tenant_id, payin_id)
    return PayinOut.of(payin, catalogue.asset(payin.asset))
