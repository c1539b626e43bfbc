"""Typed models of the ledger's tables (they come from migration 0001).

The ledger writes them through its database functions (`ledger_apply`, `ledger_hold`,
`ledger_resolve_hold`); these models describe the tables, and serve reads.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, ForeignKeyConstraint, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from wallet.models import Base, Units


class Account(Base):
    """One per (wallet, asset) or (system name, asset); the balance lives on the row."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("wallet_id", "asset"),
        UniqueConstraint("system_name", "asset"),
        UniqueConstraint("id", "asset"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    asset: Mapped[str] = mapped_column(ForeignKey("assets.code"))
    wallet_id: Mapped[str | None] = mapped_column(ForeignKey("wallets.id"))
    system_name: Mapped[str | None]
    allow_negative: Mapped[bool] = mapped_column(server_default="false")
    posted: Mapped[int] = mapped_column(Units, server_default="0")
    pending_in: Mapped[int] = mapped_column(Units, server_default="0")
    pending_out: Mapped[int] = mapped_column(Units, server_default="0")
    version: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default="now()")


class LedgerTransaction(Base):
    """A balanced set of postings, with why it was made (append-only)."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (UniqueConstraint("external_kind", "external_ref", name="external_reference"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reason: Mapped[str]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    external_kind: Mapped[str | None]
    external_ref: Mapped[str | None]
    reverses_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ledger_transactions.id"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(server_default="now()")


class Posting(Base):
    """One signed amount on one account, with the account's version and balance after it."""

    __tablename__ = "postings"
    __table_args__ = (
        ForeignKeyConstraint(["account_id", "asset"], ["accounts.id", "accounts.asset"]),
        Index("postings_transaction", "transaction_id"),
        Index("postings_account_time", "account_id", "created_at"),
    )

    transaction_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("ledger_transactions.id"))
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    asset: Mapped[str]
    amount: Mapped[int] = mapped_column(Units)
    account_version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    posted_after: Mapped[int] = mapped_column(Units)
    created_at: Mapped[datetime] = mapped_column(server_default="clock_timestamp()")


class Hold(Base):
    """An amount reserved from one account for another: pending until posted or voided."""

    __tablename__ = "holds"
    __table_args__ = (
        Index("holds_pending", "debit_account_id", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    debit_account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"))
    credit_account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(Units)
    status: Mapped[str] = mapped_column(server_default="pending")
    reason: Mapped[str]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    transaction_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ledger_transactions.id")
    )
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    resolved_at: Mapped[datetime | None]
