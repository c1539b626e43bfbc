"""Bank accounts over HTTP: link, list, get, delete."""

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from wallet.api.auth import Reader, Transferer
from wallet.api.dependencies import (
    BankDep,
    CatalogueDep,
    DbSession,
    RuntimeDep,
    known_query_parameters,
)
from wallet.api.fields import WalletFilter, id_pattern
from wallet.api.idempotent import OptionalIdempotencyKey
from wallet.api.pagination import (
    Limit,
    Page,
    Position,
    cursor_query,
    page_and_cursor,
    resume_after,
)
from wallet.api.problems import problem_responses
from wallet.bank_accounts.models import BANK_ACCOUNT_PREFIX
from wallet.bank_accounts.repository import get_bank_account, list_bank_accounts
from wallet.bank_accounts.schemas import BankAccountCreate, BankAccountOut
from wallet.bank_accounts.service import ask_provider, check_linkable, record_link, unlink
from wallet.database import run_transaction
from wallet.ids import new_id

router = APIRouter(
    dependencies=[Depends(known_query_parameters)],
    tags=["bank-accounts"],
    responses=problem_responses(400, 401, 403, 422, 500),
)

BankAccountIdPath = Annotated[
    str, Path(pattern=id_pattern(BANK_ACCOUNT_PREFIX), description="A bank account id (`bac_...`).")
]


@router.post(
    "/v1/bank-accounts",
    status_code=201,
    summary="Link a bank account to a wallet",
    responses={200: {"model": BankAccountOut}, **problem_responses(404, 503)},
)
def create(
    body: BankAccountCreate,
    *,
    principal: Transferer,
    runtime: RuntimeDep,
    bank: BankDep,
    catalogue: CatalogueDep,
    response: Response,
    idempotency_key: OptionalIdempotencyKey = None,
) -> BankAccountOut:
    """The bank checks the details and keeps them; we keep its token, the holder's name and
    the last four digits. 201 when linked now, 200 for an account the wallet has linked
    already (the same token, or a retry with the same `Idempotency-Key`)."""
    run_transaction(
        runtime.sessions, lambda s: check_linkable(s, principal.tenant_id, body.wallet_id)
    )
    provider_key = (
        new_id("link")
        if idempotency_key is None
        else hashlib.sha256(f"{principal.tenant_id}:{idempotency_key}".encode()).hexdigest()
    )
    linked = ask_provider(bank, body, provider_key)
    account, created = run_transaction(
        runtime.sessions,
        lambda s: record_link(
            s, principal.tenant_id, body.wallet_id, linked, provider=bank.name, catalogue=catalogue
        ),
    )
    if not created:
        response.status_code = 200
    return BankAccountOut.of(account)


@router.get("/v1/bank-accounts", name="list", summary="List bank accounts")
def list_(
    principal: Reader,
    session: DbSession,
    *,
    wallet_id: WalletFilter = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, cursor_query(id_pattern(BANK_ACCOUNT_PREFIX))] = None,
) -> Page[BankAccountOut]:
    found = list_bank_accounts(
        session,
        principal.tenant_id,
        wallet_id=wallet_id,
        after=resume_after(cursor),
        limit=limit + 1,
    )
    page, next_cursor = page_and_cursor(found, limit, lambda a: Position(a.created_at, a.id))
    return Page(data=[BankAccountOut.of(a) for a in page], next_cursor=next_cursor)


@router.get(
    "/v1/bank-accounts/{bank_account_id}",
    summary="Get a bank account",
    responses=problem_responses(404),
)
def get(
    bank_account_id: BankAccountIdPath, principal: Reader, session: DbSession
) -> BankAccountOut:
    return BankAccountOut.of(get_bank_account(session, principal.tenant_id, bank_account_id))


@router.delete(
    "/v1/bank-accounts/{bank_account_id}",
    status_code=204,
    summary="Unlink a bank account",
    responses=problem_responses(404),
)
def delete(bank_account_id: BankAccountIdPath, principal: Transferer, session: DbSession) -> None:
    """New payments can no longer use it; those already made go on."""
    unlink(session, principal.tenant_id, bank_account_id)
