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

from sqlalchemy.orm import Session

from wallet.errors import WalletError
from wallet.ledger import repository
from wallet.ledger.errors import UnknownTransaction, error_from_outcome
from wallet.ledger.repository import (
    Balance,
    HistoryEntry,
    HistoryFilter,
    PostingKey,
    balance,
    lock_accounts,
    system_account,
    user_account,
    user_accounts,
    wallet_balances,
    wallet_history,
)

# Besides its write path, the ledger's reads as the other areas use them (accounts opened on
# first use, balances, a wallet's history): other areas call the ledger through this module.
__all__ = [
    "Balance",
    "ExternalReference",
    "HistoryEntry",
    "HistoryFilter",
    "Hold",
    "HoldResolution",
    "ItemResult",
    "Posting",
    "PostingKey",
    "Reason",
    "TransactionRequest",
    "apply",
    "balance",
    "lock_accounts",
    "place_hold",
    "post",
    "post_hold",
    "reverse",
    "system_account",
    "user_account",
    "user_accounts",
    "void_hold",
    "wallet_balances",
    "wallet_history",
]


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
    COLD_TRANSFER = "cold_transfer"


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


def apply(
    session: Session, requests: Sequence[TransactionRequest], *, atomic: bool
) -> list[ItemResult]:
    """Write many transactions in one call; with `atomic`, any failure writes none of them.

    In atomic mode the items after the first failure are not tried and are reported as
    failed by it.
    """
    payload = json.dumps([request.to_json() for request in requests])
    outcome = repository.apply_transactions(session, payload, atomic=atomic)
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
    lines = repository.transaction_postings(session, transaction_id)
    if not lines:
        raise UnknownTransaction(f"no ledger transaction {transaction_id}")
    return post(
        session,
        TransactionRequest(
            reason=Reason.REVERSAL,
            postings=[Posting(account_id, -amount) for account_id, amount in lines],
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
    outcome = repository.place_hold(
        session,
        debit=debit_account,
        credit=credit_account,
        amount=amount,
        reason=reason.value,
        metadata=json.dumps(dict(metadata or {})),
    )
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


def void_holds(session: Session, hold_ids: Sequence[int]) -> None:
    """Release many pending holds without moving money, in one call: all of them, or none
    (then raises why)."""
    outcome = repository.void_holds(session, list(hold_ids))
    if not outcome["ok"]:
        raise error_from_outcome(outcome)


def _resolve(
    session: Session, hold_id: int, amount: int | None, metadata: Mapping[str, Any] | None
) -> HoldResolution:
    document = None if metadata is None else json.dumps(dict(metadata))
    outcome = repository.resolve_hold(session, hold_id, amount, document)
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
