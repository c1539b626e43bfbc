"""Withdrawal requests on the API's hot path: many in one statement, as transfers are.

A request is checked as far as it can be without the database (`check_request`) and priced
first; then `withdrawals_once` (wallet/sql/functions) makes many requests at once on an
autocommit connection (`wallet.batching`): each one's key claim, the wallet's status, the
rolling limit, the hold, the withdrawal row, its `withdrawal.requested` event and the stored
answer commit together. A request to one of our own deposit addresses is answered
`INTERNAL` with nothing written: an internal transfer, made by `request_withdrawal`.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import partial
from typing import Any, Final, Literal

import psycopg

from wallet.assets.service import Catalogue
from wallet.errors import WalletError
from wallet.events.service import EVENT_PREFIX, registered
from wallet.idempotency.service import IdempotencyKey, Outcome, once_answer
from wallet.ids import new_id
from wallet.ledger.errors import ErrorCode, error_from_outcome
from wallet.wallets.errors import UnknownWallet, WalletNotActive
from wallet.withdrawals import repository
from wallet.withdrawals.schemas import WithdrawalCreate
from wallet.withdrawals.service import CheckedRequest, new_withdrawal, out_with

REQUESTED = registered("withdrawal.requested")


class Internal(Enum):
    """The answer to a request whose destination is one of our deposit addresses."""

    INTERNAL = "internal"


INTERNAL: Final = Internal.INTERNAL


@dataclass(frozen=True)
class KeyedWithdrawal:
    """A checked withdrawal request under its idempotency key, with its fee, or the error
    that pricing it raised (an error only if the withdrawal leaves the service)."""

    tenant_id: str
    key_id: str
    body: WithdrawalCreate
    checked: CheckedRequest
    fee: int | WalletError
    key: IdempotencyKey


def withdrawals_once(
    connection: psycopg.Connection[Any],
    requests: Sequence[KeyedWithdrawal],
    catalogue: Catalogue,
) -> list[Outcome | WalletError | Literal[Internal.INTERNAL]]:
    """Make each withdrawal request, unless its key was used already, in one statement.

    An answer is the outcome under the key (replayed if the key was used before; a refusal
    is one), `INTERNAL`, or, with nothing written, the request's pricing error or an
    `IdempotencyConflict`: the caller keeps those with `record_failure`. The keys must differ.
    """
    sent = [_statement_item(catalogue, keyed) for keyed in requests]
    answers = repository.withdrawals_once(connection, json.dumps(sent), REQUESTED)
    return [_answer(keyed, answer) for keyed, answer in zip(requests, answers, strict=True)]


def _statement_item(catalogue: Catalogue, keyed: KeyedWithdrawal) -> dict[str, Any]:
    checked = keyed.checked
    fee = keyed.fee if isinstance(keyed.fee, int) else 0
    withdrawal = new_withdrawal(keyed.tenant_id, keyed.key_id, keyed.body, checked, fee=fee)
    # Its times are the database's, written by the statement.
    withdrawal.created_at = withdrawal.updated_at = datetime.now(UTC)
    daily = checked.daily_limit
    return {
        "tenant": keyed.key.scope,
        "key": keyed.key.key,
        "request_hash": keyed.key.request_hash,
        "id": withdrawal.id,
        "wallet": withdrawal.wallet_id,
        "asset": withdrawal.asset,
        "chain": withdrawal.chain,
        "address": withdrawal.address,
        "destination_type": withdrawal.destination_type,
        "amount": str(withdrawal.amount),
        "fee": str(fee) if isinstance(keyed.fee, int) else None,
        "daily": None if daily is None else str(daily),
        "status": withdrawal.status,
        "approvals_required": withdrawal.approvals_required,
        "requested_by": withdrawal.requested_by,
        "document": out_with(catalogue, withdrawal, 0).model_dump(
            mode="json", exclude={"created_at", "updated_at"}
        ),
        "event_id": new_id(EVENT_PREFIX),
    }


def _answer(
    keyed: KeyedWithdrawal, answer: dict[str, Any]
) -> Outcome | WalletError | Literal[Internal.INTERNAL]:
    if answer.get("internal"):
        return INTERNAL
    if answer.get("unpriced"):
        assert isinstance(keyed.fee, WalletError)
        return keyed.fee
    return once_answer(keyed.key, answer, partial(_refusal, keyed))


def _refusal(keyed: KeyedWithdrawal, failure: dict[str, Any]) -> WalletError:
    """A refusal as `withdrawals_once` stores it under the key, as the error it answers:
    in the terms `request_withdrawal` refuses the same request in."""
    if failure["error"] == ErrorCode.UNKNOWN_WALLET:
        return UnknownWallet(f"no wallet {failure['wallet_id']}")
    if failure["error"] == ErrorCode.WALLET_NOT_ACTIVE:
        return WalletNotActive(f"wallet {failure['wallet_id']} is {failure['status']}")
    if failure["error"] == ErrorCode.DAILY_LIMIT_EXCEEDED:
        return keyed.checked.daily_limit_exceeded()
    return error_from_outcome(failure)
