"""A transfer as the API shows it and `transfer.created` carries it; the transfer request."""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from wallet.api.fields import Amount, AssetCode, Memo, Metadata, WalletId
from wallet.transfers.service import (
    TIME_FORMAT,
)


class TransferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_wallet_id: WalletId
    destination_wallet_id: WalletId
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

    @field_serializer("created_at")
    def _utc_to_the_microsecond(self, created_at: datetime) -> str:
        return created_at.astimezone(UTC).strftime(TIME_FORMAT)
