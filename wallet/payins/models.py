"""Typed model of pay-ins (table: migration 0007)."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from wallet.assets.models import Asset
from wallet.bank_accounts.models import BankAccount
from wallet.ledger.models import Hold, LedgerTransaction
from wallet.models import Base, Units
from wallet.tenants.models import Tenant
from wallet.wallets.models import Wallet

# Tables the foreign keys below name; imported so the mapper can resolve them in any process.
REFERENCED_MODELS = (Tenant, Wallet, BankAccount, Asset, Hold, LedgerTransaction)

PAYIN_PREFIX = "pin"


class PayinStatus(StrEnum):
    """Ours: the provider's statuses, and two of our own before the provider has answered."""

    CREATING = "creating"
    """Recorded; the provider is being asked to create it."""
    UNKNOWN = "unknown"
    """The provider's answer was lost (a timeout, a 5xx): it is being asked by our key."""
    PENDING = "pending"
    """Created at the provider, waiting for the customer's money: pending in."""
    PROCESSING = "processing"
    """The customer paid; the bank is settling it: pending in."""
    SUCCEEDED = "succeeded"
    """Credited to the wallet, less the fee."""
    FAILED = "failed"
    """Ended without money; nothing was credited."""
    RETURNED = "returned"
    """Returned by the bank after it succeeded: the credit was reversed."""
    CHARGED_BACK = "charged_back"
    """Disputed by the customer after it succeeded: the credit was reversed."""


UNRESOLVED = (PayinStatus.CREATING, PayinStatus.UNKNOWN)


class Payin(Base):
    __tablename__ = "payins"
    __table_args__ = (
        UniqueConstraint("provider", "provider_payment_id"),
        Index("payins_tenant", "tenant_id", text("created_at DESC"), text("id DESC")),
        Index("payins_wallet", "wallet_id", text("created_at DESC"), text("id DESC")),
        Index(
            "payins_unresolved",
            "updated_at",
            postgresql_where=text("status IN ('creating', 'unknown')"),
        ),
    )

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
    hold_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("holds.id"))
    credit_transaction_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ledger_transactions.id")
    )
    reversal_transaction_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ledger_transactions.id")
    )
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    updated_at: Mapped[datetime] = mapped_column(server_default="now()")

    @property
    def net_amount(self) -> int:
        """What the wallet is credited: the amount less the fee."""
        return self.amount - self.fee
