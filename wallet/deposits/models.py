"""Typed models of deposit addresses, deposits and chain positions (tables: migration 0004)."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from wallet.assets.models import Asset
from wallet.ledger.models import Hold, LedgerTransaction
from wallet.models import Base, Units
from wallet.tenants.models import Tenant
from wallet.wallets.models import Wallet

# Tables the foreign keys below name; imported so the mapper can resolve them in any process.
REFERENCED_MODELS = (Asset, Hold, LedgerTransaction, Tenant, Wallet)

ADDRESS_PREFIX = "dad"
DEPOSIT_PREFIX = "dep"


class DepositStatus(StrEnum):
    """Where a deposit stands; only `credited` money is spendable."""

    SEEN = "seen"
    """In a canonical block, waiting for confirmations: pending in, not spendable."""
    CREDITED = "credited"
    """Confirmed and posted to the wallet, once."""
    HELD = "held"
    """Confirmed while its wallet was frozen (or closed): still pending in, not spendable,
    credited when the wallet is unfrozen."""
    ORPHANED = "orphaned"
    """Its block left the chain before it was credited; nothing was posted."""
    BELOW_MINIMUM = "below_minimum"
    """Smaller than the asset's minimum deposit: recorded and reported, not credited."""
    REVERSED = "reversed"
    """Credited, then its block left the chain: the credit was reversed."""


class DepositAddressCounter(Base):
    __tablename__ = "deposit_address_counters"

    chain: Mapped[str] = mapped_column(primary_key=True)
    bip44_account: Mapped[int]
    next_index: Mapped[int]


class DepositAddress(Base):
    __tablename__ = "deposit_addresses"
    __table_args__ = (
        UniqueConstraint("wallet_id", "chain"),
        UniqueConstraint("chain", "derivation_index"),
        UniqueConstraint("chain", "address"),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"))
    chain: Mapped[str] = mapped_column(ForeignKey("deposit_address_counters.chain"))
    derivation_index: Mapped[int]
    address: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default="now()")


class Deposit(Base):
    __tablename__ = "deposits"
    __table_args__ = (
        UniqueConstraint("chain", "tx_hash", "log_index"),
        Index("deposits_chain_block", "chain", "block_number"),
        Index(
            "deposits_unconfirmed",
            "chain",
            "block_number",
            postgresql_where=text("status = 'seen'"),
        ),
        Index("deposits_wallet", "wallet_id", text("seen_at DESC"), text("id DESC")),
        Index("deposits_tenant", "tenant_id", text("seen_at DESC"), text("id DESC")),
        Index("deposits_held", "wallet_id", postgresql_where=text("status = 'held'")),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"))
    chain: Mapped[str]
    tx_hash: Mapped[str]
    log_index: Mapped[int]
    asset: Mapped[str] = mapped_column(ForeignKey("assets.code"))
    amount: Mapped[int] = mapped_column(Units)
    from_address: Mapped[str]
    to_address: Mapped[str]
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str]
    status: Mapped[str]
    confirmations: Mapped[int]
    hold_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("holds.id"))
    credit_transaction_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ledger_transactions.id")
    )
    reversal_transaction_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ledger_transactions.id")
    )
    reversal_count: Mapped[int]
    seen_at: Mapped[datetime] = mapped_column(server_default="now()")
    credited_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default="now()")


class ChainHeader(Base):
    __tablename__ = "chain_headers"

    chain: Mapped[str] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str]
    parent_hash: Mapped[str]
    timestamp: Mapped[int] = mapped_column(BigInteger)


class ChainCursor(Base):
    __tablename__ = "chain_cursors"

    chain: Mapped[str] = mapped_column(primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str]
    updated_at: Mapped[datetime] = mapped_column(server_default="now()")


class ChainRunState(StrEnum):
    RUNNING = "running"
    """The watcher follows the chain."""
    HALTED = "halted"
    """The watcher stopped following: an operator must look, then resume it."""


class ChainState(Base):
    __tablename__ = "chain_states"

    chain: Mapped[str] = mapped_column(primary_key=True)
    state: Mapped[str]
    reason: Mapped[str | None]
    since: Mapped[datetime] = mapped_column(server_default="now()")


class ChainResume(Base):
    __tablename__ = "chain_resumes"
    __table_args__ = (Index("chain_resumes_chain", "chain", text("resumed_at DESC")),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chain: Mapped[str]
    from_block: Mapped[int] = mapped_column(BigInteger)
    operator: Mapped[str]
    reason: Mapped[str]
    halt_reason: Mapped[str]
    halted_since: Mapped[datetime]
    orphaned: Mapped[int]
    reversed: Mapped[int]
    resumed_at: Mapped[datetime] = mapped_column(server_default="now()")
