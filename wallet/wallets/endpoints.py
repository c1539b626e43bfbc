"""Wallets: create, find, list by owner, freeze; their balances and ledger history."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from wallet.api.auth import Operator, Reader, Transferer
from wallet.api.contract import link
from wallet.api.dependencies import CatalogueDep, DbSession, known_query_parameters
from wallet.api.fields import AssetCode, OwnerRef, Timestamp, WalletIdPath, id_pattern
from wallet.api.idempotent import REPLAY_HEADERS, OptionalIdempotencyKey, respond_once
from wallet.api.pagination import (
    Limit,
    Page,
    Position,
    cursor_query,
    decode_cursor,
    page_and_cursor,
)
from wallet.api.problems import problem_responses
from wallet.deposits.service import unfreeze as unfreeze_wallet
from wallet.ledger.service import (
    HistoryFilter,
    PostingKey,
    wallet_balances,
    wallet_history,
)
from wallet.wallets.models import WalletStatus
from wallet.wallets.schemas import (
    AssetBalance,
    HistoryItem,
    WalletBalances,
    WalletCreate,
    WalletOut,
)
from wallet.wallets.service import create_wallet, get_wallet, set_status, tenant_wallets

# A history cursor names a posting by its account and the account's version: `<account>.<version>`.
_POSTING_ID_PATTERN = r"^[0-9]{1,18}\.[0-9]{1,18}$"

_ID = "$response.body#/id"
_WALLET_LINKS = {
    "GetWallet": link("wallets_get", "The wallet.", wallet_id=_ID),
    "ListOwnersWallets": link(
        "wallets_list", "The owner's wallets.", owner_ref="$response.body#/owner_ref"
    ),
    "FreezeWallet": link("wallets_freeze", "Freeze the wallet.", wallet_id=_ID),
    "UnfreezeWallet": link("wallets_unfreeze", "Unfreeze the wallet.", wallet_id=_ID),
    "GetBalances": link("wallets_get_balances", "The wallet's balances.", wallet_id=_ID),
    "ListTransactions": link(
        "wallets_list_transactions", "The wallet's ledger history.", wallet_id=_ID
    ),
    "TransferToWallet": link(
        "transfers_create", "A transfer into the wallet.", {"destination_wallet_id": _ID}
    ),
    "CreateDepositAddress": link(
        "deposit_addresses_create", "A deposit address of the wallet.", wallet_id=_ID
    ),
    "ListDepositAddresses": link(
        "deposit_addresses_list", "The wallet's deposit addresses.", wallet_id=_ID
    ),
    "ListDeposits": link("deposits_list", "The wallet's deposits.", wallet_id=_ID),
}

router = APIRouter(
    dependencies=[Depends(known_query_parameters)],
    prefix="/v1/wallets",
    tags=["wallets"],
    responses=problem_responses(400, 401, 403, 422, 500),
)


@router.post(
    "",
    status_code=201,
    response_model=WalletOut,
    summary="Create a wallet",
    responses={
        201: {"headers": REPLAY_HEADERS, "links": _WALLET_LINKS},
        **problem_responses(409),
    },
)
def create(
    body: WalletCreate,
    principal: Transferer,
    session: DbSession,
    idempotency_key: OptionalIdempotencyKey = None,
) -> JSONResponse:
    """A new active wallet of the caller's tenant; `Idempotency-Key` is optional here."""

    def action() -> dict[str, Any]:
        wallet = create_wallet(session, principal.tenant_id, body.owner_ref, body.metadata)
        return WalletOut.of(wallet).model_dump(mode="json")

    return respond_once(
        session,
        principal,
        idempotency_key,
        operation="POST /v1/wallets",
        body=body,
        status_code=201,
        action=action,
    )


@router.get(
    "",
    name="list",
    summary="List wallets",
    responses={
        200: {
            "links": {
                "GetFirstWallet": link(
                    "wallets_get", "The page's first wallet.", wallet_id="$response.body#/data/0/id"
                )
            }
        }
    },
)
def list_wallets(
    principal: Reader,
    session: DbSession,
    owner_ref: Annotated[OwnerRef | None, Query()] = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, cursor_query(id_pattern("wal"))] = None,
) -> Page[WalletOut]:
    """The tenant's wallets, newest first, optionally only those of one owner."""
    after = decode_cursor(cursor) if cursor is not None else None
    wallets = tenant_wallets(
        session,
        principal.tenant_id,
        owner_ref=owner_ref,
        after=None if after is None else (after.created_at, after.id),
        limit=limit + 1,
    )
    page, next_cursor = page_and_cursor(wallets, limit, lambda w: Position(w.created_at, w.id))
    return Page(data=[WalletOut.of(wallet) for wallet in page], next_cursor=next_cursor)


@router.get("/{wallet_id}", summary="Get a wallet", responses=problem_responses(404))
def get(wallet_id: WalletIdPath, principal: Reader, session: DbSession) -> WalletOut:
    return WalletOut.of(get_wallet(session, principal.tenant_id, wallet_id))


@router.post(
    "/{wallet_id}/freeze", summary="Freeze a wallet", responses=problem_responses(404, 409)
)
def freeze(wallet_id: WalletIdPath, principal: Operator, session: DbSession) -> WalletOut:
    """Stop money from leaving or entering the wallet until it is unfrozen."""
    return WalletOut.of(set_status(session, principal.tenant_id, wallet_id, WalletStatus.FROZEN))


@router.post(
    "/{wallet_id}/unfreeze", summary="Unfreeze a wallet", responses=problem_responses(404, 409)
)
def unfreeze(
    wallet_id: WalletIdPath, principal: Operator, session: DbSession, catalogue: CatalogueDep
) -> WalletOut:
    """Let money move again; deposits that arrived while it was frozen are credited now."""
    return WalletOut.of(unfreeze_wallet(session, catalogue, principal.tenant_id, wallet_id))


@router.get(
    "/{wallet_id}/balances", summary="Get a wallet's balances", responses=problem_responses(404)
)
def get_balances(
    wallet_id: WalletIdPath, principal: Reader, session: DbSession, catalogue: CatalogueDep
) -> WalletBalances:
    """Every configured asset's balance, zero where the wallet never held it."""
    get_wallet(session, principal.tenant_id, wallet_id)
    held = {balance.asset: balance for balance in wallet_balances(session, wallet_id)}
    rows: list[AssetBalance] = []
    for asset in catalogue.assets.values():
        balance = held.get(asset.code)
        posted, pending_in, pending_out = (
            (balance.posted, balance.pending_in, balance.pending_out) if balance else (0, 0, 0)
        )
        rows.append(
            AssetBalance(
                asset=asset.code,
                available=asset.format(posted - pending_out),
                pending_in=asset.format(pending_in),
                pending_out=asset.format(pending_out),
                posted=asset.format(posted),
            )
        )
    return WalletBalances(wallet_id=wallet_id, balances=rows)


@router.get(
    "/{wallet_id}/transactions",
    summary="List a wallet's ledger history",
    responses={
        200: {
            "links": {
                "GetFirstTransfer": link(
                    "transfers_get",
                    "The transfer of the page's first entry.",
                    transfer_id="$response.body#/data/0/transfer_id",
                )
            }
        },
        **problem_responses(404),
    },
)
def list_transactions(
    *,
    wallet_id: WalletIdPath,
    principal: Reader,
    session: DbSession,
    catalogue: CatalogueDep,
    asset: Annotated[AssetCode | None, Query(description="Only this asset.")] = None,
    created_after: Annotated[Timestamp | None, Query()] = None,
    created_before: Annotated[Timestamp | None, Query()] = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, cursor_query(_POSTING_ID_PATTERN)] = None,
) -> Page[HistoryItem]:
    """Every movement on the wallet's accounts, newest first."""
    get_wallet(session, principal.tenant_id, wallet_id)
    if asset is not None:
        catalogue.asset(asset)
    entries = wallet_history(
        session,
        wallet_id,
        HistoryFilter(asset, created_after, created_before),
        after=_posting_key(decode_cursor(cursor)) if cursor is not None else None,
        limit=limit + 1,
    )
    page, next_cursor = page_and_cursor(entries, limit, lambda e: _posting_position(e.key))
    return Page(data=[HistoryItem.of(entry, catalogue) for entry in page], next_cursor=next_cursor)


def _posting_position(key: PostingKey) -> Position:
    return Position(key.created_at, f"{key.account_id}.{key.account_version}")


def _posting_key(position: Position) -> PostingKey:
    account, version = position.id.split(".")
    return PostingKey(position.created_at, int(account), int(version))
