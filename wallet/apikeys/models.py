"""Typed model of API keys and the scopes they may carry (the table comes from migration 0002)."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from wallet.models import Base


class Scope(StrEnum):
    """What a key may do; each operation of the API needs one scope, none implies another."""

    READ = "read"
    TRANSFER = "transfer"
    WITHDRAW = "withdraw"
    OPERATOR = "operator"


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("api_keys_tenant", "tenant_id"),)

    id: Mapped[str] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    secret_hash: Mapped[str] = mapped_column(unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    label: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    revoked_at: Mapped[datetime | None]

    @property
    def active(self) -> bool:
        return self.revoked_at is None
