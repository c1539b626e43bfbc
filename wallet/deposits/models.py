"""Typed models of deposit addresses, deposits and chain positions (tables: migration 0004)."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from wallet.models import Base, Units
from wallet.tenants.models import Tenant
from wallet.wallets.models import Wallet

# Tables the foreign keys below name; imported so the mapper can resolve them in any process.
REFERENCED_MODELS = (Tenant, Wallet)

ADDRESS_PREFIX = "dad"
DEPOSIT_PREFIX = "dep"


class DepositStatus(StrEnum):
    """Where a deposit stands; only `credited` money is spendable."""

    SEEN = "seen"
    """In a canonical block, waiting for confirmations: pending in, not spendable."""
    CREDITED = "credited"
    """Confirmed and posted to the wallet, once."""
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

    id: Mapped[str] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"))
    chain: Mapped[str] = mapped_column(ForeignKey("deposit_address_counters.chain"))
    derivation_index: Mapped[int]
    address: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default="now()")


class Deposit(Base):
    __tablename__ = "deposits"

    id: Mapped[str] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"))
    chain: Mapped[str]
    tx_hash: Mapped[str]
    log_index: Mapped[int]
    asset: Mapped[str]
    amount: Mapped[int] = mapped_column(Units)
    from_address: Mapped[str]
    to_address: Mapped[str]
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str]
    status: Mapped[str]
    confirmations: Mapped[int]
    hold_id: Mapped[int | None] = mapped_column(BigInteger)
    credit_transaction_id: Mapped[int | None] = mapped_column(BigInteger)
    reversal_transaction_id: Mapped[int | None] = mapped_column(BigInteger)
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
