"""Pay-ins over HTTP: start one, get one, list them."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from wallet.api.auth import Reader, Transferer
from wallet.api.dependencies import (
    CatalogueDep,
    DbSession,
    PayinBatches,
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
from wallet.payins.models import PAYIN_PREFIX
from wallet.payins.repository import get_payin, list_payins
from wallet.payins.schemas import PayinCreate, PayinOut
from wallet.payins.service import KeyedPayin

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
    catalogue: CatalogueDep,
    batches: PayinBatches,
) -> JSONResponse:
    """The pay-in is created at the bank and shows in the wallet as pending in until the bank
    says it `succeeded`; then the wallet is credited `net_amount`. If the bank does not answer
    in time the status is `unknown` until the service has asked the bank again: never a guess.
    A retry with the same `Idempotency-Key` answers with the same pay-in, as it is now.

    An API process takes the pay-in requests to the bank in batches, one call at a time: those
    that come while a call is under way go together in the next (up to `WALLET_PAYIN_BATCH`).
    One that waits longer than `WALLET_PAYIN_TURN_WAIT` for its call to start is answered 503
    `bank-unavailable` with nothing started."""
    key = request_key(principal, idempotency_key, "create_payin", body)
    # Waiting for its batch holds no thread: the bank's webhooks are answered meanwhile.
    made = await batches.submit(KeyedPayin(principal.tenant_id, body, key))
    headers = {REPLAYED_HEADER: "true" if made.outcome.replayed else "false"}
    if made.outcome.problem is not None:
        return problem_response(made.outcome.problem, headers)
    assert made.payin is not None  # every pay-in made is recorded
    answer = PayinOut.of(made.payin, catalogue.asset(made.payin.asset))
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
