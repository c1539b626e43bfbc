"""Deposit addresses and crypto deposits over HTTP.

Mounted by `wallet.api.app.create_app`, which also puts the process's `AddressIssuer`
(chosen by `wallet.ports.address_issuer`) on `app.state.address_issuer`.
"""

from typing import Annotated, cast

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from wallet.api.auth import Reader, Transferer
from wallet.api.contract import link
from wallet.api.dependencies import CatalogueDep, DbSession, known_query_parameters
from wallet.api.fields import WalletIdPath, id_pattern
from wallet.api.pagination import (
    Limit,
    Page,
    Position,
    cursor_query,
    page_and_cursor,
    resume_after,
)
from wallet.api.problems import problem_responses
from wallet.assets.service import Catalogue
from wallet.deposits.addresses import AddressIssuer
from wallet.deposits.models import DEPOSIT_PREFIX, Deposit
from wallet.deposits.schemas import DepositAddressCreate, DepositAddressOut, DepositOut
from wallet.deposits.service import (
    current_confirmations,
    deposit_address,
    get_deposit,
    list_deposits,
    wallet_deposit_addresses,
)
from wallet.wallets.service import get_wallet

_ADDRESS_LINKS = {
    "ListDepositAddresses": link(
        "deposit_addresses_list",
        "The wallet's deposit addresses.",
        wallet_id="$response.body#/wallet_id",
    ),
    "ListDeposits": link(
        "deposits_list", "The wallet's deposits.", wallet_id="$response.body#/wallet_id"
    ),
}

router = APIRouter(
    dependencies=[Depends(known_query_parameters)],
    responses=problem_responses(400, 401, 403, 422, 500),
)


def address_issuer(request: Request) -> AddressIssuer:
    return cast(AddressIssuer, request.app.state.address_issuer)


IssuerDep = Annotated[AddressIssuer, Depends(address_issuer)]


@router.post(
    "/v1/wallets/{wallet_id}/deposit-addresses",
    status_code=201,
    name="create",
    tags=["deposit-addresses"],
    summary="Get the wallet's deposit address on a chain",
    responses={
        200: {"model": DepositAddressOut, "links": _ADDRESS_LINKS},
        201: {"links": _ADDRESS_LINKS},
        **problem_responses(404, 409, 503),
    },
)
def create(
    wallet_id: WalletIdPath,
    body: DepositAddressCreate,
    *,
    principal: Transferer,
    session: DbSession,
    catalogue: CatalogueDep,
    issuer: IssuerDep,
    response: Response,
) -> DepositAddressOut:
    """The wallet's address on the chain: 201 when made now, 200 with the same one after."""
    issued = deposit_address(
        session, principal.tenant_id, wallet_id, body.chain, issuer=issuer, catalogue=catalogue
    )
    if not issued.created:
        response.status_code = 200
    return DepositAddressOut.of(issued.address, catalogue)


@router.get(
    "/v1/wallets/{wallet_id}/deposit-addresses",
    name="list",
    tags=["deposit-addresses"],
    summary="List the wallet's deposit addresses",
    responses=problem_responses(404),
)
def list_addresses(
    wallet_id: WalletIdPath, principal: Reader, session: DbSession, catalogue: CatalogueDep
) -> list[DepositAddressOut]:
    get_wallet(session, principal.tenant_id, wallet_id)
    addresses = wallet_deposit_addresses(session, principal.tenant_id, wallet_id)
    return [DepositAddressOut.of(address, catalogue) for address in addresses]


@router.get(
    "/v1/deposits",
    name="list",
    tags=["deposits"],
    summary="List deposits",
    responses={
        200: {
            "links": {
                "GetFirstDeposit": link(
                    "deposits_get",
                    "The page's first deposit.",
                    deposit_id="$response.body#/data/0/id",
                )
            }
        }
    },
)
def list_(
    principal: Reader,
    session: DbSession,
    catalogue: CatalogueDep,
    *,
    wallet_id: Annotated[
        str | None, Query(pattern=id_pattern("wal"), description="Only this wallet's.")
    ] = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, cursor_query(id_pattern(DEPOSIT_PREFIX))] = None,
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


@router.get(
    "/v1/deposits/{deposit_id}",
    tags=["deposits"],
    summary="Get a deposit",
    responses=problem_responses(404),
)
def get(
    deposit_id: Annotated[
        str, Path(pattern=id_pattern(DEPOSIT_PREFIX), description="A deposit id (`dep_...`).")
    ],
    principal: Reader,
    session: DbSession,
    catalogue: CatalogueDep,
) -> DepositOut:
    deposit = get_deposit(session, principal.tenant_id, deposit_id)
    return _deposit_out(deposit, catalogue, current_confirmations(session, [deposit])[deposit.id])


def _deposit_out(deposit: Deposit, catalogue: Catalogue, confirmations: int) -> DepositOut:
    asset, chain = catalogue.asset(deposit.asset), catalogue.chain(deposit.chain)
    return DepositOut.of(deposit, asset, chain, confirmations)
