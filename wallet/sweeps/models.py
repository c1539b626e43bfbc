"""Typed models of sweep jobs and their transactions (tables: migrations 0012_sweeps and
0016_sweep_refuel)."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, text
from sqlalchemy.orm import Mapped, mapped_column

from wallet.assets.models import Asset
from wallet.models import Base, Units

# Tables the foreign keys below name; imported so the mapper can resolve them in any process.
REFERENCED_MODELS = (Asset,)

SWEEP_PREFIX = "swp"


class SweepKind(StrEnum):
    SWEEP = "sweep"
    """From a deposit address to the hot wallet."""
    COLD = "cold"
    """The hot wallet's excess above the ceiling, to the cold address."""


class SweepStatus(StrEnum):
    GAS_REQUESTED = "gas_requested"
    """A token sweep's gas top-up from the hot wallet is signed (and sent), not yet final."""
    GAS_CONFIRMED = "gas_confirmed"
    """The top-up's receipt is final: the deposit address can pay for its transfer."""
    SWEEP_SENT = "sweep_sent"
    """The transfer is signed and stored (and sent), not yet final."""
    REFUEL_REQUESTED = "refuel_requested"
    """A token transfer is stuck and its address cannot pay a fee bump: more gas from the hot
    wallet is signed (and sent), not yet final; then the transfer is bumped."""
    SWEEP_CONFIRMED = "sweep_confirmed"
    """The transfer's receipt is final (status 1): fees booked."""
    FAILED = "failed"
    """A transaction of the job was mined with status 0: fees booked, nothing moved."""


OPEN_STATUSES = (
    SweepStatus.GAS_REQUESTED,
    SweepStatus.GAS_CONFIRMED,
    SweepStatus.SWEEP_SENT,
    SweepStatus.REFUEL_REQUESTED,
)


class SweepPhase(StrEnum):
    GAS = "gas"
    TRANSFER = "transfer"


class Sweep(Base):
    __tablename__ = "sweeps"
    __table_args__ = (
        Index(
            "sweeps_open",
            "chain",
            "source",
            postgresql_where=text(
                "status IN ('gas_requested', 'gas_confirmed', 'sweep_sent', 'refuel_requested')"
            ),
        ),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    kind: Mapped[str]
    chain: Mapped[str]
    asset: Mapped[str] = mapped_column(ForeignKey("assets.code"))
    source: Mapped[str]
    destination: Mapped[str]
    amount: Mapped[int] = mapped_column(Units)
    status: Mapped[str]
    network_fee: Mapped[int] = mapped_column(Units, server_default="0")
    failure_reason: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default="now()")
    updated_at: Mapped[datetime] = mapped_column(server_default="now()")


class SweepTransaction(Base):
    __tablename__ = "sweep_transactions"
    __table_args__ = (Index("sweep_transactions_sweep", "sweep_id", "signed_at"),)

    tx_hash: Mapped[str] = mapped_column(primary_key=True)
    sweep_id: Mapped[str] = mapped_column(ForeignKey("sweeps.id"))
    phase: Mapped[str]
    sender: Mapped[str]
    nonce: Mapped[int] = mapped_column(BigInteger)
    raw_transaction: Mapped[bytes] = mapped_column(LargeBinary)
    max_fee_per_gas: Mapped[int] = mapped_column(Units)
    gas: Mapped[int] = mapped_column(BigInteger)
    send_outcome: Mapped[str | None]
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    succeeded: Mapped[bool | None]
    fee: Mapped[int | None] = mapped_column(Units)
    signed_at: Mapped[datetime] = mapped_column(server_default="now()")
