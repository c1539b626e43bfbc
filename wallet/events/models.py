"""Typed model of the outbox (migration 0003): one row per event, relayed once."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from wallet.models import Base


class OutboxEvent(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("outbox_unrelayed", "id", postgresql_where=text("relayed_at IS NULL")),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    event_type: Mapped[str]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    relayed_at: Mapped[datetime | None]
