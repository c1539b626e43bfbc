"""Payouts over HTTP: read them. They are requested as withdrawals to a bank account
(`POST /v1/withdrawals`, `wallet.withdrawals.endpoints`)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from wallet.api.auth import Reader
from wallet.api.dependencies import CatalogueDep, DbSession, known_query_parameters
from wallet.api.fields import WalletFilter, id_pattern
from wallet.api.pagination import (
    Limit,
    Page,
    Position,
    cursor_query,
    page_and_cursor,
    resume_after,
)
from wallet.api.problems import problem_responses
from wallet.payouts.models import PAYOUT_PREFIX
from wallet.payouts.repository import get_payout, list_payouts
from wallet.payouts.schemas import PayoutOut

router = APIRouter(
    dependencies=[Depends(known_query_parameters)],
    tags=["payouts"],
    responses=problem_responses(400, 401, 403, 422, 500),
)

PayoutIdPath = Annotated[
    str, Path(pattern=id_pattern(PAYOUT_PREFIX), description="A payout id (`pot_...`).")
]


@router.get("/v1/payouts", name="list", summary="List payouts (withdrawals to bank accounts)")
def list_(
    principal: Reader,
    session: DbSession,
    catalogue: CatalogueDep,
    *,
    wallet_id: WalletFilter = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, cursor_query(id_pattern(PAYOUT_PREFIX))] = None,
) -> Page[PayoutOut]:
    """The tenant's payouts, newest first."""
    found = list_payouts(
        session,
        principal.tenant_id,
        wallet_id=wallet_id,
        after=resume_after(cursor),
        limit=limit + 1,
    )
    page, next_cursor = page_and_cursor(found, limit, lambda p: Position(p.created_at, p.id))
    return Page(
        data=[PayoutOut.of(p, catalogue.asset(p.asset)) for p in page], next_cursor=next_cursor
    )


@router.get("/v1/payouts/{payout_id}", summary="Get a payout", responses=problem_responses(404))
def get(
    payout_id: PayoutIdPath, principal: Reader, session: DbSession, catalogue: CatalogueDep
) -> PayoutOut:
    payout = get_payout(session, principal.tenant_id, payout_id)
    return PayoutOut.of(payout, catalogue.asset(payout.asset))
