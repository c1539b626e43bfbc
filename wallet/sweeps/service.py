"""Sweep jobs and their state changes, each committed with its ledger entries by the
caller's unit of work.

Sweeps never change a user's balance: what moves between our own addresses stays in
`chain:<chain>`. The network fee of every sweep transaction (a gas top-up, a sweep, a cold
transfer), once its receipt is final, goes from the fee account `fees:<chain>` to
`chain:<chain>` in the native asset; a cold transfer also moves its amount from
`chain:<chain>` to `cold:<chain>` (held at an address with no key here). Each booking has
the external reference ('sweep-transaction', tx hash), so it happens once.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from chains import FeePolicy, Receipt, TransactionRequest
from custody import SignedTransaction
from wallet.assets.service import Asset, Catalogue
from wallet.ids import new_id
from wallet.ledger import service as ledger
from wallet.ledger.errors import DuplicateExternalReference
from wallet.ledger.service import ExternalReference, Posting, Reason, system_account
from wallet.ledger.service import TransactionRequest as LedgerRequest
from wallet.settings import Settings
from wallet.sweeps.models import (
    SWEEP_PREFIX,
    Sweep,
    SweepKind,
    SweepPhase,
    SweepStatus,
    SweepTransaction,
)
from wallet.sweeps.repository import known_hashes, unmined_sent_from
from wallet.withdrawals.service import fee_policy, native_asset

EXTERNAL_KIND = "sweep-transaction"
CAPITAL_KIND = "hot-wallet-capital"


@dataclass(frozen=True)
class SweepRules:
    """Per asset, the balance from which a deposit address is swept and the hot wallet's
    ceiling (in the asset's units); per chain, the cold address; the fee cap, and how long a
    sent transaction may stay unmined before it is replaced with higher fees."""

    thresholds: Mapping[str, int]
    ceilings: Mapping[str, int]
    cold_addresses: Mapping[str, str]
    fee_policy: FeePolicy
    bump_after: timedelta

    @classmethod
    def from_settings(cls, settings: Settings, catalogue: Catalogue) -> "SweepRules":
        thresholds, ceilings = {}, {}
        for code, policy in settings.sweep_policies.items():
            asset = catalogue.asset(code)
            if policy.threshold is not None:
                thresholds[code] = asset.parse(policy.threshold)
            if policy.ceiling is not None:
                ceilings[code] = asset.parse(policy.ceiling)
        cold = {chain: address.lower() for chain, address in settings.cold_addresses.items()}
        bump_after = timedelta(seconds=settings.withdrawal_bump_after)
        return cls(thresholds, ceilings, cold, fee_policy(settings), bump_after)


def sweep_hashes(session: Session, hashes: Collection[str]) -> set[str]:
    """Which of `hashes` (transactions of a hot wallet) are sweep transactions."""
    return known_hashes(session, hashes)


def start_sweep(
    session: Session,
    *,
    kind: SweepKind,
    asset: Asset,
    source: str,
    destination: str,
    amount: int,
    status: SweepStatus,
) -> Sweep:
    assert asset.chain is not None
    sweep = Sweep(
        id=new_id(SWEEP_PREFIX),
        kind=kind,
        chain=asset.chain,
        asset=asset.code,
        source=source,
        destination=destination,
        amount=amount,
        status=status,
        network_fee=0,
    )
    session.add(sweep)
    session.flush()
    return sweep


def store_transaction(
    session: Session,
    sweep: Sweep,
    phase: SweepPhase,
    request: TransactionRequest,
    signed: SignedTransaction,
) -> SweepTransaction:
    """Write ahead: the signed transaction is stored before it is sent."""
    stored = SweepTransaction(
        tx_hash="0x" + signed.transaction_hash.hex(),
        sweep_id=sweep.id,
        phase=phase,
        sender=signed.sender.lower(),
        nonce=request.nonce,
        raw_transaction=signed.raw_transaction,
        max_fee_per_gas=request.max_fee_per_gas,
        gas=request.gas,
        signed_at=datetime.now(UTC),
    )
    session.add(stored)
    session.flush()
    return stored


@dataclass(frozen=True)
class HotSend:
    """What an unmined transaction the hot wallet signed for a sweep may still take from it:
    `max_cost` of the native asset (its value and gas at the fee cap) and, when it sends a
    token, `tokens` of `token`."""

    max_cost: int
    token: str | None
    tokens: int


def hot_wallet_sends(session: Session, catalogue: Catalogue, chain: str, hot: str) -> list[HotSend]:
    """The sweeps' unmined transactions from the chain's hot wallet `hot`: gas top-ups and
    refuels (native), and transfers to the cold address (the job's asset)."""
    native = native_asset(catalogue, chain).code
    sends = []
    for sent in unmined_sent_from(session, chain, hot):
        max_cost = TransactionRequest.of_signed(sent.raw_transaction).max_cost()
        if sent.phase == SweepPhase.TRANSFER and sent.asset != native:
            sends.append(HotSend(max_cost, sent.asset, sent.amount))
        else:
            sends.append(HotSend(max_cost, None, 0))
    return sends


def move(sweep: Sweep, status: SweepStatus) -> None:
    sweep.status = status
    sweep.updated_at = datetime.now(UTC)


def record_final(
    session: Session, catalogue: Catalogue, sweep: Sweep, receipt: Receipt
) -> SweepStatus:
    """A transaction of the job has a final receipt: book its fee (and a cold transfer's
    amount) and move the job on."""
    stored = session.get_one(SweepTransaction, receipt.tx_hash)
    stored.block_number, stored.succeeded, stored.fee = (
        receipt.block_number,
        receipt.succeeded,
        receipt.fee,
    )
    sweep.network_fee += receipt.fee
    native = native_asset(catalogue, sweep.chain).code
    if stored.phase == SweepPhase.TRANSFER and sweep.asset == native:
        # A replacement of a native sweep sends less: its higher fee comes out of the balance.
        sweep.amount = TransactionRequest.of_signed(stored.raw_transaction).value
    lines: dict[int, int] = {}

    def add(account: int, amount: int) -> None:
        lines[account] = lines.get(account, 0) + amount

    add(system_account(session, f"fees:{sweep.chain}", native), -receipt.fee)
    add(system_account(session, f"chain:{sweep.chain}", native), receipt.fee)
    cold = receipt.succeeded and sweep.kind == SweepKind.COLD
    if cold:
        add(system_account(session, f"chain:{sweep.chain}", sweep.asset), sweep.amount)
        add(system_account(session, f"cold:{sweep.chain}", sweep.asset), -sweep.amount)
    postings = [Posting(account, amount) for account, amount in sorted(lines.items()) if amount]
    if postings:
        ledger.post(
            session,
            LedgerRequest(
                reason=Reason.COLD_TRANSFER if cold else Reason.FEE,
                postings=postings,
                metadata={"sweep_id": sweep.id, "tx_hash": receipt.tx_hash},
                external=ExternalReference(EXTERNAL_KIND, receipt.tx_hash),
            ),
        )
    if not receipt.succeeded:
        sweep.failure_reason = f"{stored.phase} transaction mined with status 0 (reverted)"
        move(sweep, SweepStatus.FAILED)
    elif sweep.status == SweepStatus.REFUEL_REQUESTED:
        move(sweep, SweepStatus.SWEEP_SENT)  # its stuck transfer can now be bumped
    elif stored.phase == SweepPhase.GAS:
        move(sweep, SweepStatus.GAS_CONFIRMED)
    else:
        move(sweep, SweepStatus.SWEEP_CONFIRMED)
    return SweepStatus(sweep.status)


def book_capital(session: Session, chain: str, asset: str, amount: int, tx_hash: str) -> bool:
    """Book what the house itself sent to the chain's hot wallet in the mined transaction
    `tx_hash` (the devnet's funding, an operator's top-up): from its capital account
    `capital:<chain>` into `chain:<chain>`, so that the chain's holdings reconcile. Once per
    transaction and asset: False if it was booked before."""
    request = LedgerRequest(
        reason=Reason.ADJUSTMENT,
        postings=[
            Posting(system_account(session, f"chain:{chain}", asset), -amount),
            Posting(system_account(session, f"capital:{chain}", asset), amount),
        ],
        metadata={"tx_hash": tx_hash},
        external=ExternalReference(CAPITAL_KIND, f"{tx_hash}:{asset}"),
    )
    (booked,) = ledger.apply(session, [request], atomic=False)
    if isinstance(booked.error, DuplicateExternalReference):
        return False
    if booked.error is not None:
        raise booked.error
    return True
