"""Transfers: instant internal moves of an asset from one wallet to another, and tips."""

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from wallet.api.auth import Reader, Transferer
from wallet.api.contract import link
from wallet.api.dependencies import (
    CatalogueDep,
    DbSession,
    RuntimeDep,
    TransferBatches,
    known_query_parameters,
)
from wallet.api.fields import TRANSFER_ID_PATTERN
from wallet.api.idempotent import REPLAY_HEADERS, RequiredIdempotencyKey, request_key, respond
from wallet.api.problems import problem_responses
from wallet.database import run_transaction
from wallet.errors import WalletError
from wallet.idempotency.service import Outcome, record_failure
from wallet.transfers.schemas import TransferCreate, TransferOut
from wallet.transfers.service import (
    KeyedTransfer,
    TransferRequest,
    document,
    get_transfer,
)

router = APIRouter(
    dependencies=[Depends(known_query_parameters)],
    prefix="/v1/transfers",
    tags=["transfers"],
    responses=problem_responses(400, 401, 403, 422, 500),
)


@router.post(
    "",
    status_code=201,
    response_model=TransferOut,
    summary="Make a transfer",
    responses={
        201: {
            "headers": REPLAY_HEADERS,
            "links": {
                "GetTransfer": link(
                    "transfers_get", "The transfer.", transfer_id="$response.body#/id"
                ),
                "ListSourceTransactions": link(
                    "wallets_list_transactions",
                    "The source wallet's ledger history.",
                    wallet_id="$response.body#/source_wallet_id",
                ),
                "TransferBack": link(
                    "transfers_create",
                    "A transfer back to the source wallet.",
                    {
                        "source_wallet_id": "$response.body#/destination_wallet_id",
                        "destination_wallet_id": "$response.body#/source_wallet_id",
                    },
                ),
            },
        },
        **problem_responses(404, 409),
    },
)
async def create(
    body: TransferCreate,
    idempotency_key: RequiredIdempotencyKey,
    principal: Transferer,
    runtime: RuntimeDep,
    transfer_batches: TransferBatches,
) -> JSONResponse:
    """Move the amount at once, or fail with nothing moved; emits `transfer.created`.

    Needs an `Idempotency-Key`: a retry with the same key and body gets the first answer.
    """
    key = request_key(principal, idempotency_key, "POST /v1/transfers", body)
    answer: Outcome | WalletError
    try:
        request = TransferRequest(
            tenant_id=principal.tenant_id,
            source_wallet_id=body.source_wallet_id,
            destination_wallet_id=body.destination_wallet_id,
            asset=body.asset,
            amount=runtime.catalogue.asset(body.asset).parse(body.amount),
            memo=body.memo,
            metadata=body.metadata,
        )
    except WalletError as error:
        answer = error
    else:
        answer = await transfer_batches.submit(KeyedTransfer(request, key))
    if isinstance(answer, WalletError):
        # The failure becomes the key's outcome, unless the key has one (a conflict is one).
        record = partial(record_failure, key=key, error=answer)
        answer = await run_in_threadpool(run_transaction, runtime.sessions, record)
    return respond(answer, status_code=201)


@router.get(
    "/{transfer_id}",
    summary="Get a transfer",
    response_model=TransferOut,
    responses=problem_responses(404),
)
def get(
    transfer_id: Annotated[
        str, Path(pattern=TRANSFER_ID_PATTERN, description="A transfer id (`trf_...`).")
    ],
    principal: Reader,
    session: DbSession,
    catalogue: CatalogueDep,
) -> dict[str, Any]:
    return document(catalogue, get_transfer(session, principal.tenant_id, transfer_id))
