"""Typed model of linked bank accounts (table: migration 0007)."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from wallet.assets.models import Asset
from wallet.models import Base
from wallet.tenants.models import Tenant
from wallet.wallets.models import Wallet

# Tables the foreign keys below name; imported so the mapper can resolve them in any process.
REFERENCED_MODELS = (Tenant, Wallet, Asset)

BANK_ACCOUNT_PREFIX = "bac"


class BankAccount(Base):
    __tablename__ = "bank_accounts"
    __table_args__ = (
        Index(
            "bank_accounts_token",
            "wallet_id",
            "provider",
            "token",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("bank_accounts_tenant", "tenant_id", text("created_at DESC"), text("id DESC")),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"))
    provider: Mapped[str]
    token: Mapped[str]
    holder_name: Mapped[str]
    last4: Mapped[str]
    currency: Mapped[str] = mapped_column(ForeignKey("assets.code"))
    country: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    deleted_at: Mapped[datetime | None]
