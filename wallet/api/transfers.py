"""Transfers: instant internal moves of an asset from one wallet to another, and tips."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from wallet.api.auth import Reader, Transferer
from wallet.api.dependencies import CatalogueDep, DbSession, known_query_parameters
from wallet.api.fields import ID_PATTERN, Amount, AssetCode, Id, Memo, Metadata
from wallet.api.idempotent import REPLAY_HEADERS, RequiredIdempotencyKey, respond_once
from wallet.api.problems import problem_responses
from wallet.assets import Catalogue
from wallet.events.outbox import emit
from wallet.transfers.service import Transfer, TransferRequest, get_transfer, transfer

TRANSFER_CREATED = "transfer.created"

router = APIRouter(
    dependencies=[Depends(known_query_parameters)],
    prefix="/v1/transfers",
    tags=["transfers"],
    responses=problem_responses(400, 401, 403, 422, 500),
)


class TransferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_wallet_id: Id
    destination_wallet_id: Id
    asset: AssetCode
    amount: Amount
    memo: Memo | None = None
    metadata: Metadata = Field(default_factory=dict)


class TransferOut(BaseModel):
    id: str = Field(examples=["trf_1042"])
    source_wallet_id: str
    destination_wallet_id: str
    asset: str
    amount: str = Field(examples=["12.50"])
    memo: str | None
    metadata: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, moved: Transfer, catalogue: Catalogue) -> "TransferOut":
        return cls(
            id=moved.id,
            source_wallet_id=moved.source_wallet_id,
            destination_wallet_id=moved.destination_wallet_id,
            asset=moved.asset,
            amount=catalogue.asset(moved.asset).format(moved.amount),
            memo=moved.memo,
            metadata=moved.metadata,
            created_at=moved.created_at.astimezone(UTC),
        )


@router.post(
    "",
    status_code=201,
    response_model=TransferOut,
    summary="Make a transfer",
    responses={201: {"headers": REPLAY_HEADERS}, **problem_responses(404, 409)},
)
def create(
    body: TransferCreate,
    idempotency_key: RequiredIdempotencyKey,
    principal: Transferer,
    session: DbSession,
    catalogue: CatalogueDep,
) -> JSONResponse:
    """Move the amount at once, or fail with nothing moved; emits `transfer.created`.

    Needs an `Idempotency-Key`: a retry with the same key and body gets the first answer.
    """

    def action() -> dict[str, Any]:
        amount = catalogue.asset(body.asset).parse(body.amount)
        moved = transfer(
            session,
            catalogue,
            TransferRequest(
                tenant_id=principal.tenant_id,
                source_wallet_id=body.source_wallet_id,
                destination_wallet_id=body.destination_wallet_id,
                asset=body.asset,
                amount=amount,
                memo=body.memo,
                metadata=body.metadata,
            ),
        )
        document = TransferOut.of(moved, catalogue).model_dump(mode="json")
        emit(session, tenant_id=principal.tenant_id, event_type=TRANSFER_CREATED, data=document)
        return document

    return respond_once(
        session,
        principal,
        idempotency_key,
        operation="POST /v1/transfers",
        body=body,
        status_code=201,
        action=action,
    )


@router.get("/{transfer_id}", summary="Get a transfer", responses=problem_responses(404))
def get(
    transfer_id: Annotated[str, Path(max_length=64, pattern=ID_PATTERN)],
    principal: Reader,
    session: DbSession,
    catalogue: CatalogueDep,
) -> TransferOut:
    return TransferOut.of(get_transfer(session, principal.tenant_id, transfer_id), catalogue)
