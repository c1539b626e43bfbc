"""The typed model of tenants (the table comes from the migrations)."""

from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column

from wallet.models import Base


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
