"""Typed model of the provider events received (table: migration 0007)."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from wallet.models import Base


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
