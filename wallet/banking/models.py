"""Typed model of the provider events received (table: migration 0007), and the columns
pay-ins and payouts share."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from wallet.assets.models import Asset
from wallet.bank_accounts.models import BankAccount
from wallet.ledger.models import LedgerTransaction
from wallet.models import Base, Units
from wallet.tenants.models import Tenant
from wallet.wallets.models import Wallet

# Tables the foreign keys below name; imported so the mapper can resolve them in any process.
REFERENCED_MODELS = (Tenant, Wallet, BankAccount, Asset, LedgerTransaction)


class ProviderPayment:
    """The columns of a payment made at the bank provider (a pay-in or a payout): our id, which
    is also our idempotency key at the provider, and the provider's last snapshot applied."""

    id: Mapped[str] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"))
    bank_account_id: Mapped[str] = mapped_column(ForeignKey("bank_accounts.id"))
    provider: Mapped[str]
    asset: Mapped[str] = mapped_column(ForeignKey("assets.code"))
    amount: Mapped[int] = mapped_column(Units)
    fee: Mapped[int] = mapped_column(Units)
    status: Mapped[str]
    provider_payment_id: Mapped[str | None]
    provider_version: Mapped[int] = mapped_column(default=0)
    failure_code: Mapped[str | None]
    reversal_transaction_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ledger_transactions.id")
    )
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    updated_at: Mapped[datetime] = mapped_column(server_default="now()")


class EventOutcome(StrEnum):
    APPLIED = "applied"
    """The event's snapshot was newer than ours: our payment moved to its status."""
    STALE = "stale"
    """We held a snapshot as new or newer (events arrive in any order): nothing changed."""
    UNMATCHED = "unmatched"
    """No payment of ours has the event's idempotency key: kept for an operator."""


class ReceivedProviderEvent(Base):
    __tablename__ = "provider_events"
    __table_args__ = (
        Index(
            "provider_events_unmatched",
            "received_at",
            postgresql_where=text("outcome = 'unmatched'"),
        ),
    )

    provider: Mapped[str] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(primary_key=True)
    event_type: Mapped[str]
    payment_id: Mapped[str]
    payment_version: Mapped[int]
    outcome: Mapped[str]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(server_default="now()")
