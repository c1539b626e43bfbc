"""Deposit addresses and crypto deposits over HTTP.

Mounted by `wallet.api.app.create_app`, which also puts the process's `DepositAddressBook`
(from `wallet.deposits.addresses.load_address_book`) on `app.state.deposit_address_book`.
"""

from typing import Annotated, cast

from fastapi import APIRouter, Depends, Path, Request, Response

from wallet.api.auth import Reader, Transferer
from wallet.api.dependencies import CatalogueDep, DbSession, known_query_parameters
from wallet.api.fields import ID_PATTERN, WalletFilter, WalletIdPath
from wallet.api.pagination import (
    Cursor,
    Limit,
    Page,
    Position,
    page_and_cursor,
    resume_after,
)
from wallet.api.problems import problem_responses
from wallet.assets.service import Catalogue
from wallet.deposits.addresses import DepositAddressBook
from wallet.deposits.models import Deposit
from wallet.deposits.schemas import DepositAddressCreate, DepositAddressOut, DepositOut
from wallet.deposits.service import (
    current_confirmations,
    deposit_address,
    get_deposit,
    list_deposits,
    wallet_deposit_addresses,
)
from wallet.wallets.service import get_wallet

router = APIRouter(
    dependencies=[Depends(known_query_parameters)],
    tags=["deposits"],
    responses=problem_responses(400, 401, 403, 422, 500),
)


def address_book(request: Request) -> DepositAddressBook:
    return cast(DepositAddressBook, request.app.state.deposit_address_book)


AddressBookDep = Annotated[DepositAddressBook, Depends(address_book)]


@router.post(
    "/v1/wallets/{wallet_id}/deposit-addresses",
    status_code=201,
    summary="Get the wallet's deposit address on a chain",
    responses={200: {"model": DepositAddressOut}, **problem_responses(404, 409, 503)},
)
def create_deposit_address(
    wallet_id: WalletIdPath,
    body: DepositAddressCreate,
    *,
    principal: Transferer,
    session: DbSession,
    catalogue: CatalogueDep,
    book: AddressBookDep,
    response: Response,
) -> DepositAddressOut:
    """The wallet's address on the chain: 201 when made now, 200 with the same one after."""
    issued = deposit_address(
        session, principal.tenant_id, wallet_id, body.chain, book=book, catalogue=catalogue
    )
    if not issued.created:
        response.status_code = 200
    return DepositAddressOut.of(issued.address, catalogue)


@router.get(
    "/v1/wallets/{wallet_id}/deposit-addresses",
    summary="List the wallet's deposit addresses",
    responses=problem_responses(404),
)
def list_deposit_addresses(
    wallet_id: WalletIdPath, principal: Reader, session: DbSession, catalogue: CatalogueDep
) -> list[DepositAddressOut]:
    get_wallet(session, principal.tenant_id, wallet_id)
    addresses = wallet_deposit_addresses(session, principal.tenant_id, wallet_id)
    return [DepositAddressOut.of(address, catalogue) for address in addresses]


@router.get("/v1/deposits", summary="List deposits")
def list_(
    principal: Reader,
    session: DbSession,
    catalogue: CatalogueDep,
    *,
    wallet_id: WalletFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DepositOut]:
    """The tenant's crypto deposits, newest first."""
    deposits = list_deposits(
        session,
        principal.tenant_id,
        wallet_id=wallet_id,
        after=resume_after(cursor),
        limit=limit + 1,
    )
    page, next_cursor = page_and_cursor(deposits, limit, lambda d: Position(d.seen_at, d.id))
    counts = current_confirmations(session, page)
    return Page(
        data=[_deposit_out(d, catalogue, counts[d.id]) for d in page], next_cursor=next_cursor
    )


@router.get("/v1/deposits/{deposit_id}", summary="Get a deposit", responses=problem_responses(404))
def get(
    deposit_id: Annotated[str, Path(max_length=64, pattern=ID_PATTERN)],
    principal: Reader,
    session: DbSession,
    catalogue: CatalogueDep,
) -> DepositOut:
    deposit = get_deposit(session, principal.tenant_id, deposit_id)
    return _deposit_out(deposit, catalogue, current_confirmations(session, [deposit])[deposit.id])


def _deposit_out(deposit: Deposit, catalogue: Catalogue, confirmations: int) -> DepositOut:
    asset, chain = catalogue.asset(deposit.asset), catalogue.chain(deposit.chain)
    return DepositOut.of(deposit, asset, chain, confirmations)
