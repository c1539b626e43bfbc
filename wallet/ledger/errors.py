"""Ledger errors: each a distinct problem type the API can render as it is."""

from typing import Any

from wallet.errors import Conflict, InvalidRequest, NotFound, WalletError


class InsufficientFunds(WalletError):
    status_code = 422
    problem = "insufficient-funds"
    title = "The account's available balance is too low"


class Unbalanced(InvalidRequest):
    problem = "unbalanced-transaction"
    title = "The postings of each asset must sum to zero"


class AlreadyReversed(Conflict):
    problem = "already-reversed"
    title = "The transaction has been reversed already"


class DuplicateExternalReference(Conflict):
    problem = "duplicate-external-reference"
    title = "A transaction with this external reference exists"


class UnknownHold(NotFound):
    problem = "unknown-hold"
    title = "No such hold"


class HoldAlreadyResolved(Conflict):
    problem = "hold-already-resolved"
    title = "The hold has been posted or voided already"


class ExceedsHold(InvalidRequest):
    problem = "exceeds-hold"
    title = "A hold can be posted for at most the amount it reserved"


class UnknownAccount(NotFound):
    problem = "unknown-account"
    title = "No such ledger account"


class UnknownTransaction(NotFound):
    problem = "unknown-transaction"
    title = "No such ledger transaction"


_BY_CODE: dict[str, type[WalletError]] = {
    "insufficient_funds": InsufficientFunds,
    "unbalanced": Unbalanced,
    "already_reversed": AlreadyReversed,
    "duplicate_external_ref": DuplicateExternalReference,
    "unknown_hold": UnknownHold,
    "hold_already_resolved": HoldAlreadyResolved,
    "exceeds_hold": ExceedsHold,
}


def error_from_outcome(outcome: dict[str, Any]) -> WalletError:
    """Turn a failure reported by the database functions into its error."""
    code = str(outcome["error"])
    extra = {key: value for key, value in outcome.items() if key not in {"ok", "error"}}
    return _BY_CODE[code](code.replace("_", " "), **extra)
