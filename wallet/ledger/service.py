"""Writing to the ledger: transactions of postings, reversals and holds.

The writes are done by database functions (wallet/sql/functions) so that each call is one round
trip and the locking order, balance floors and versioning live in one place. This module turns
typed requests into those calls and their answers back into typed results or errors.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from wallet.errors import WalletError
from wallet.ledger.errors import UnknownTransaction, error_from_outcome


class Reason(StrEnum):
    """Why money moved; stored on every ledger transaction."""

    TRANSFER = "transfer"
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    FEE = "fee"
    PAYIN = "payin"
    PAYOUT = "payout"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True)
class Posting:
    """A signed amount in minor units on one account: negative debits, positive credits."""

    account_id: int
    amount: int


@dataclass(frozen=True)
class ExternalReference:
    """An outside identifier (a tx hash, a provider id); unique per kind in the ledger."""

    kind: str
    ref: str


@dataclass(frozen=True)
class TransactionRequest:
    reason: Reason
    postings: Sequence[Posting]
    metadata: Mapping[str, Any] = field(default_factory=dict)
    external: ExternalReference | None = None
    reverses: int | None = None

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "reason": self.reason.value,
            "metadata": dict(self.metadata),
            "postings": [[p.account_id, str(p.amount)] for p in self.postings],
        }
        if self.external is not None:
            document["external_kind"] = self.external.kind
            document["external_ref"] = self.external.ref
        if self.reverses is not None:
            document["reverses"] = self.reverses
        return document


@dataclass(frozen=True)
class ItemResult:
    """What became of one transaction of a batch: its id and time, or why it was refused."""

    transaction_id: int | None
    error: WalletError | None
    created_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Hold:
    id: int


@dataclass(frozen=True)
class HoldResolution:
    hold_id: int
    status: str
    transaction_id: int | None


_APPLY = text("SELECT ledger_apply(CAST(:transactions AS jsonb), :atomic)")
_HOLD = text("SELECT ledger_hold(:debit, :credit, :amount, :reason, CAST(:metadata AS jsonb))")
_RESOLVE = text("SELECT ledger_resolve_hold(:hold, :amount, CAST(:metadata AS jsonb))")


def apply(
    session: Session, requests: Sequence[TransactionRequest], *, atomic: bool
) -> list[ItemResult]:
    """Write many transactions in one call; with `atomic`, any failure writes none of them.

    In atomic mode the items after the first failure are not tried and are reported as
    failed by it.
    """
    payload = json.dumps([request.to_json() for request in requests])
    outcome: dict[str, Any] = session.execute(
        _APPLY, {"transactions": payload, "atomic": atomic}
    ).scalar_one()
    if atomic and not outcome["ok"]:
        failure = error_from_outcome(outcome["results"][-1])
        return [ItemResult(None, failure) for _ in requests]
    return [_item_result(item) for item in outcome["results"]]


def post(session: Session, request: TransactionRequest) -> int:
    """Write one transaction and return its id, or raise why it was refused."""
    (result,) = apply(session, [request], atomic=True)
    if result.error is not None:
        raise result.error
    assert result.transaction_id is not None
    return result.transaction_id


def reverse(
    session: Session, transaction_id: int, metadata: Mapping[str, Any] | None = None
) -> int:
    """Write the reversing transaction of `transaction_id` (each posting negated); once only."""
    rows = session.execute(
        text(
            "SELECT account_id, amount FROM postings WHERE transaction_id = :id ORDER BY account_id"
        ),
        {"id": transaction_id},
    ).all()
    if not rows:
        raise UnknownTransaction(f"no ledger transaction {transaction_id}")
    return post(
        session,
        TransactionRequest(
            reason=Reason.REVERSAL,
            postings=[Posting(row.account_id, -int(row.amount)) for row in rows],
            metadata=dict(metadata or {}),
            reverses=transaction_id,
        ),
    )


def place_hold(
    session: Session,
    debit_account: int,
    credit_account: int,
    amount: int,
    reason: Reason,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Hold:
    """Reserve `amount` on the debit account (pending out) towards the credit account."""
    outcome: dict[str, Any] = session.execute(
        _HOLD,
        {
            "debit": debit_account,
            "credit": credit_account,
            "amount": amount,
            "reason": reason.value,
            "metadata": json.dumps(dict(metadata or {})),
        },
    ).scalar_one()
    if not outcome["ok"]:
        raise error_from_outcome(outcome)
    return Hold(int(outcome["hold_id"]))


def post_hold(
    session: Session, hold_id: int, amount: int, metadata: Mapping[str, Any] | None = None
) -> HoldResolution:
    """Post a pending hold for `amount` (at most what it reserved); the rest is released."""
    return _resolve(session, hold_id, amount, metadata)


def void_hold(session: Session, hold_id: int) -> HoldResolution:
    """Release a pending hold without moving money."""
    return _resolve(session, hold_id, None, None)


def _resolve(
    session: Session, hold_id: int, amount: int | None, metadata: Mapping[str, Any] | None
) -> HoldResolution:
    outcome: dict[str, Any] = session.execute(
        _RESOLVE,
        {
            "hold": hold_id,
            "amount": amount,
            "metadata": None if metadata is None else json.dumps(dict(metadata)),
        },
    ).scalar_one()
    if not outcome["ok"]:
        raise error_from_outcome(outcome)
    transaction_id = outcome.get("transaction_id")
    return HoldResolution(
        hold_id=hold_id,
        status=str(outcome["status"]),
        transaction_id=None if transaction_id is None else int(transaction_id),
    )


def _item_result(item: dict[str, Any]) -> ItemResult:
    if item["ok"]:
        created_at = datetime.fromisoformat(item["created_at"])
        return ItemResult(int(item["transaction_id"]), None, created_at)
    return ItemResult(None, error_from_outcome(item))
