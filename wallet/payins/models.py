"""Typed model of pay-ins (table: migration 0007)."""

from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from wallet.banking.models import ProviderPayment
from wallet.ledger.models import Hold
from wallet.models import Base

# Tables the foreign keys below name; imported so the mapper can resolve them in any process.
REFERENCED_MODELS = (Hold,)

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


class Payin(ProviderPayment, Base):
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

    hold_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("holds.id"))
    credit_transaction_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ledger_transactions.id")
    )

    @property
    def net_amount(self) -> int:
        """What the wallet is credited: the amount less the fee."""
        return self.amount - self.fee
