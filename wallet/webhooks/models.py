"""Typed models of webhook endpoints, deliveries and attempts (migrations 0003, 0008)."""

from datetime import datetime
from enum import StrEnum
from typing import Final

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from wallet.models import Base

ENDPOINT_PREFIX: Final = "whe"
DELIVERY_PREFIX: Final = "whd"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookEndpoint(Base):
    """Where a tenant's events are posted; the signing secret is kept only encrypted."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        Index(
            "webhook_endpoints_tenant",
            "tenant_id",
            "created_at",
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    url: Mapped[str]
    event_types: Mapped[list[str]] = mapped_column(ARRAY(Text))
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    deleted_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(server_default="0")
    paused_until: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One event for one endpoint; while pending, `next_attempt_at` is when it is due."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index(
            "webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")
        ),
        Index(
            "webhook_deliveries_endpoint", "endpoint_id", text("created_at DESC"), text("id DESC")
        ),
        Index(
            "webhook_deliveries_in_flight",
            "endpoint_id",
            postgresql_where=text("leased_until IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox.event_id"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"))
    status: Mapped[str] = mapped_column(server_default=DeliveryStatus.PENDING.value)
    attempt_count: Mapped[int] = mapped_column(server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(server_default="now()")
    enqueued_at: Mapped[datetime | None]
    first_attempted_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    delivered_at: Mapped[datetime | None]
    leased_until: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One post of a delivery and how it went."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("webhook_attempts_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id"))
    attempt_number: Mapped[int]
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None]
    error: Mapped[str | None]
    duration_ms: Mapped[int]
