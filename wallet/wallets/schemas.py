"""Wallets, their balances and history entries as the API shows them; the wallet request."""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wallet.api.fields import Metadata, OwnerRef
from wallet.assets.service import Catalogue
from wallet.ledger.service import (
    HistoryEntry,
)
from wallet.transfers.service import PREFIX as TRANSFER_PREFIX
from wallet.wallets.models import Wallet, WalletStatus

LEDGER_TRANSACTION_PREFIX = "ltx_"


class WalletCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner_ref: OwnerRef
    metadata: Metadata = Field(default_factory=dict)


class WalletOut(BaseModel):
    id: str = Field(examples=["wal_mfrggzdfmztwq2lknnwg23tpobyxe43u"])
    owner_ref: str
    status: WalletStatus
    metadata: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, wallet: Wallet) -> "WalletOut":
        return cls(
            id=wallet.id,
            owner_ref=wallet.owner_ref,
            status=WalletStatus(wallet.status),
            metadata=wallet.metadata_,
            created_at=wallet.created_at.astimezone(UTC),
        )


class AssetBalance(BaseModel):
    """Amounts as decimal strings in the asset's unit; `available` may be spent now."""

    asset: str
    available: str = Field(examples=["87.50"])
    pending_in: str
    pending_out: str
    posted: str


class WalletBalances(BaseModel):
    wallet_id: str
    balances: list[AssetBalance]


class HistoryItem(BaseModel):
    """One movement on the wallet: a signed amount and the balance right after it."""

    transaction_id: str = Field(description="The ledger transaction (`ltx_...`).")
    transfer_id: str | None = Field(description="The transfer (`trf_...`), for transfers.")
    reason: str = Field(examples=["transfer", "deposit", "withdrawal"])
    asset: str
    amount: str = Field(examples=["-12.50"], description="Negative when money left the wallet.")
    balance_after: str = Field(description="The asset's posted balance right after this entry.")
    created_at: datetime
    memo: str | None
    metadata: dict[str, Any]

    @classmethod
    def of(cls, entry: HistoryEntry, catalogue: Catalogue) -> "HistoryItem":
        asset = catalogue.asset(entry.asset)
        return cls(
            transaction_id=f"{LEDGER_TRANSACTION_PREFIX}{entry.transaction_id}",
            transfer_id=(
                f"{TRANSFER_PREFIX}{entry.transaction_id}" if entry.reason == "transfer" else None
            ),
            reason=entry.reason,
            asset=entry.asset,
            amount=asset.format(entry.amount),
            balance_after=asset.format(entry.balance_after),
            created_at=entry.created_at.astimezone(UTC),
            memo=entry.memo,
            metadata=entry.metadata,
        )
