"""Typed model of payouts (table: migration 0007)."""

from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from wallet.banking.models import ProviderPayment
from wallet.ledger.models import Hold
from wallet.models import Base

# Tables the foreign keys below name; imported so the mapper can resolve them in any process.
REFERENCED_MODELS = (Hold,)

PAYOUT_PREFIX = "pot"


class PayoutStatus(StrEnum):
    """Ours: the provider's statuses, and two of our own before the provider has answered.
    Amount and fee stay held until the payout is paid (posted) or failed (released)."""

    SENDING = "sending"
    """Held; the provider is being asked to pay it out."""
    UNKNOWN = "unknown"
    """The provider's answer was lost: it is being asked by our key, never sent blindly again."""
    PENDING = "pending"
    PROCESSING = "processing"
    PAID = "paid"
    """Posted: the wallet paid amount + fee."""
    FAILED = "failed"
    """The hold was released; nothing left the wallet."""
    RETURNED = "returned"
    """Paid, then returned by the beneficiary's bank: credited back to the wallet."""


UNRESOLVED = (PayoutStatus.SENDING, PayoutStatus.UNKNOWN)


class Payout(ProviderPayment, Base):
    __tablename__ = "payouts"
    __table_args__ = (
        UniqueConstraint("provider", "provider_payment_id"),
        Index("payouts_tenant", "tenant_id", text("created_at DESC"), text("id DESC")),
        Index(
            "payouts_unresolved",
            "updated_at",
            postgresql_where=text("status IN ('sending', 'unknown')"),
        ),
    )

    hold_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("holds.id"))
    send_attempts: Mapped[int] = mapped_column(default=0)
    post_transaction_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ledger_transactions.id")
    )
