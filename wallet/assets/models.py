"""Typed model of the `assets` table (migration 0001): the catalogue's assets, as stored for
the ledger's foreign keys (`store_catalogue` writes it at start)."""

from sqlalchemy.orm import Mapped, mapped_column

from wallet.models import Base


class Asset(Base):
    __tablename__ = "assets"

    code: Mapped[str] = mapped_column(primary_key=True)
    kind: Mapped[str]
    decimals: Mapped[int]
    chain: Mapped[str | None]
