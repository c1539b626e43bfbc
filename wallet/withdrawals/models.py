"""Typed models of withdrawals, their approvals and attempts, and hot wallet nonces
(tables: migration 0007_withdrawals)."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from wallet.models import Base, Units
from wallet.tenants.models import Tenant
from wallet.wallets.models import Wallet

# Tables the foreign keys below name; imported so the mapper can resolve them in any process.
REFERENCED_MODELS = (Tenant, Wallet)

WITHDRAWAL_PREFIX = "wdr"


class WithdrawalStatus(StrEnum):
    """Where a withdrawal stands. Until it is `confirmed`, `failed`, `cancelled` or `completed`
    its amount and fee are held on the wallet."""

    PENDING_APPROVAL = "pending_approval"
    """Above an approval threshold: waits for one or two operators."""
    QUEUED = "queued"
    """Waiting for the broadcaster to sign it."""
    WAITING_LIQUIDITY = "waiting_liquidity"
    """The hot wallet cannot cover it now; it goes out when funds arrive."""
    SIGNED = "signed"
    """Its transaction is signed and stored, not yet known to be accepted by the node."""
    BROADCAST = "broadcast"
    """A node accepted its transaction; waiting to be mined and confirmed."""
    CONFIRMED = "confirmed"
    """Mined with success and confirmed: amount and fee posted."""
    FAILED = "failed"
    """Mined with status 0 (or refused for good): hold released, network fee ours."""
    CANCELLED = "cancelled"
    """Cancelled before it was signed: hold released."""
    UNKNOWN = "unknown"
    """The node's answer could not tell whether the transaction went out: the funds stay held
    and only evidence from the chain (the transaction or its nonce mined) resolves it."""
    COMPLETED = "completed"
    """Internal: paid to one of our own deposit addresses' wallets, no chain transaction."""


OPEN_STATUSES = (
    WithdrawalStatus.PENDING_APPROVAL,
    WithdrawalStatus.QUEUED,
    WithdrawalStatus.WAITING_LIQUIDITY,
    WithdrawalStatus.SIGNED,
    WithdrawalStatus.BROADCAST,
    WithdrawalStatus.UNKNOWN,
)
"""Statuses whose funds are held."""

IN_FLIGHT_STATUSES = (
    WithdrawalStatus.SIGNED,
    WithdrawalStatus.BROADCAST,
    WithdrawalStatus.UNKNOWN,
)
"""Statuses with a signed transaction that may still be mined."""


class Withdrawal(Base):
    __tablename__ = "withdrawals"

    id: Mapped[str] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    wallet_id: Mapped[str] = mapped_column(ForeignKey("wallets.id"))
    asset: Mapped[str]
    amount: Mapped[int] = mapped_column(Units)
    fee: Mapped[int] = mapped_column(Units)
    destination_type: Mapped[str]
    chain: Mapped[str]
    address: Mapped[str]
    internal: Mapped[bool]
    destination_wallet_id: Mapped[str | None] = mapped_column(ForeignKey("wallets.id"))
    status: Mapped[str]
    approvals_required: Mapped[int]
    requested_by: Mapped[str]
    hold_id: Mapped[int | None] = mapped_column(BigInteger)
    transaction_id: Mapped[int | None] = mapped_column(BigInteger)
    sender: Mapped[str | None]
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None]
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None]
    confirmations: Mapped[int]
    succeeded: Mapped[bool | None]
    network_fee: Mapped[int | None] = mapped_column(Units)
    failure_reason: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    updated_at: Mapped[datetime] = mapped_column(server_default="now()")


class WithdrawalApproval(Base):
    __tablename__ = "withdrawal_approvals"

    withdrawal_id: Mapped[str] = mapped_column(ForeignKey("withdrawals.id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(server_default="now()")


class WithdrawalAttempt(Base):
    __tablename__ = "withdrawal_attempts"

    tx_hash: Mapped[str] = mapped_column(primary_key=True)
    withdrawal_id: Mapped[str] = mapped_column(ForeignKey("withdrawals.id"))
    chain: Mapped[str]
    nonce: Mapped[int] = mapped_column(BigInteger)
    raw_transaction: Mapped[bytes] = mapped_column(LargeBinary)
    max_fee_per_gas: Mapped[int] = mapped_column(Units)
    max_priority_fee_per_gas: Mapped[int] = mapped_column(Units)
    gas: Mapped[int] = mapped_column(BigInteger)
    send_outcome: Mapped[str | None]
    signed_at: Mapped[datetime] = mapped_column(server_default="now()")
    sent_at: Mapped[datetime | None]


class HotWalletNonce(Base):
    __tablename__ = "hot_wallet_nonces"

    chain: Mapped[str] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(primary_key=True)
    next_nonce: Mapped[int] = mapped_column(BigInteger)
