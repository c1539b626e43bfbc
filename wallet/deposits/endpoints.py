"""Deposit addresses and crypto deposits over HTTP.

Mounted by `wallet.api.app.create_app`, which also puts the process's `DepositAddressBook`
(from `wallet.deposits.addresses.load_address_book`) on `app.state.deposit_address_book`.
"""

from datetime import UTC, datetime
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from custody import checksum_address
from wallet.api.auth import Reader, Transferer
from wallet.api.dependencies import CatalogueDep, DbSession, known_query_parameters
from wallet.api.fields import ID_PATTERN, WalletIdPath
from wallet.api.pagination import (
    Cursor,
    Limit,
    Page,
    Position,
    decode_cursor,
    page_and_cursor,
)
from wallet.api.problems import problem_responses
from wallet.assets.service import Catalogue
from wallet.deposits.addresses import DepositAddressBook
from wallet.deposits.models import Deposit, DepositAddress, DepositStatus
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


class DepositAddressCreate(BaseModel):
    chain: str = Field(min_length=1, max_length=64, examples=["devnet"])


class DepositAddressOut(BaseModel):
    """Where the wallet's owner sends funds on a chain: ETH and every configured token."""

    id: str = Field(examples=["dad_mfrggzdfmztwq2lknnwg23tpobyxe43u"])
    wallet_id: str
    chain: str
    chain_id: int
    address: str = Field(
        examples=["0x9858EfFD232B4033E47d90003D41EC34EcaEda94"], description="EIP-55 checksummed."
    )
    created_at: datetime

    @classmethod
    def of(cls, address: DepositAddress, catalogue: Catalogue) -> "DepositAddressOut":
        return cls(
            id=address.id,
            wallet_id=address.wallet_id,
            chain=address.chain,
            chain_id=catalogue.chain(address.chain).chain_id,
            address=checksum_address(bytes.fromhex(address.address[2:])),
            created_at=address.created_at.astimezone(UTC),
        )


class DepositOut(BaseModel):
    """A transfer to a deposit address. Only `credited` deposits are in the spendable balance;
    `seen` ones show as pending in."""

    id: str = Field(examples=["dep_mfrggzdfmztwq2lknnwg23tpobyxe43u"])
    wallet_id: str
    chain: str
    asset: str
    amount: str = Field(examples=["1.500000"])
    status: DepositStatus
    confirmations: int
    confirmations_required: int
    tx_hash: str
    log_index: int = Field(
        description="The ERC-20 log's index; -1 for a transaction's own ETH value, -2 and below "
        "for ETH sent by a contract's internal call."
    )
    block_number: int
    block_hash: str
    from_address: str
    to_address: str
    seen_at: datetime
    credited_at: datetime | None

    @classmethod
    def of(cls, deposit: Deposit, catalogue: Catalogue, confirmations: int) -> "DepositOut":
        return cls(
            id=deposit.id,
            wallet_id=deposit.wallet_id,
            chain=deposit.chain,
            asset=deposit.asset,
            amount=catalogue.asset(deposit.asset).format(deposit.amount),
            status=DepositStatus(deposit.status),
            confirmations=confirmations,
            confirmations_required=catalogue.chain(deposit.chain).confirmations,
            tx_hash=deposit.tx_hash,
            log_index=deposit.log_index,
            block_number=deposit.block_number,
            block_hash=deposit.block_hash,
            from_address=deposit.from_address,
            to_address=deposit.to_address,
            seen_at=deposit.seen_at.astimezone(UTC),
            credited_at=None
            if deposit.credited_at is None
            else deposit.credited_at.astimezone(UTC),
        )


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
    wallet_id: Annotated[
        str | None, Query(max_length=64, pattern=ID_PATTERN, description="Only this wallet's.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DepositOut]:
    """The tenant's crypto deposits, newest first."""
    after = decode_cursor(cursor) if cursor is not None else None
    deposits = list_deposits(
        session,
        principal.tenant_id,
        wallet_id=wallet_id,
        after=None if after is None else (after.created_at, after.id),
        limit=limit + 1,
    )
    page, next_cursor = page_and_cursor(deposits, limit, lambda d: Position(d.seen_at, d.id))
    counts = current_confirmations(session, page)
    return Page(
        data=[DepositOut.of(d, catalogue, counts[d.id]) for d in page], next_cursor=next_cursor
    )


@router.get("/v1/deposits/{deposit_id}", summary="Get a deposit", responses=problem_responses(404))
def get(
    deposit_id: Annotated[str, Path(max_length=64, pattern=ID_PATTERN)],
    principal: Reader,
    session: DbSession,
    catalogue: CatalogueDep,
) -> DepositOut:
    deposit = get_deposit(session, principal.tenant_id, deposit_id)
    return DepositOut.of(deposit, catalogue, current_confirmations(session, [deposit])[deposit.id])
