"""Typed models of wallets (the tables come from the migrations)."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from wallet.models import Base


class WalletStatus(StrEnum):
    ACTIVE = "active"
    RESTRICTED = "restricted"
    """Its fiat balance went negative (a pay-in returned after it was spent): money may come
    in, nothing may leave until an operator lifts the restriction."""
    FROZEN = "frozen"
    CLOSED = "closed"


class Wallet(Base):
    __tablename__ = "wallets"
    __table_args__ = (Index("wallets_tenant_owner", "tenant_id", "owner_ref"),)

    id: Mapped[str] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    owner_ref: Mapped[str]
    status: Mapped[str] = mapped_column(default=WalletStatus.ACTIVE.value)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
