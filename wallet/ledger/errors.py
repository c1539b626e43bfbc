"""Ledger errors: each a distinct problem type the API can render as it is."""

from enum import StrEnum
from typing import Any

from wallet.errors import Conflict, InvalidRequest, NotFound, WalletError


class ErrorCode(StrEnum):
    """Why a database function (wallet/sql/functions) refused an item: its answer's `error`."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    FRACTIONAL_AMOUNT = "fractional_amount"
    UNBALANCED = "unbalanced"
    ALREADY_REVERSED = "already_reversed"
    DUPLICATE_EXTERNAL_REF = "duplicate_external_ref"
    UNKNOWN_HOLD = "unknown_hold"
    HOLD_ALREADY_RESOLVED = "hold_already_resolved"
    EXCEEDS_HOLD = "exceeds_hold"
    UNKNOWN_WALLET = "unknown_wallet"
    WALLET_NOT_ACTIVE = "wallet_not_active"
    DAILY_LIMIT_EXCEEDED = "daily_limit_exceeded"
    UNKNOWN_BANK_ACCOUNT = "unknown_bank_account"
    BANK_ACCOUNT_MISMATCH = "bank_account_mismatch"


class InsufficientFunds(WalletError):
    status_code = 422
    problem = "insufficient-funds"
    title = "The account's available balance is too low"


class FractionalAmount(InvalidRequest):
    problem = "fractional-amount"
    title = "Amounts are whole numbers of the asset's smallest unit"


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


# The wallets' codes (unknown_wallet, wallet_not_active) are the transfers', withdrawal
# requests' and pay-in requests' to render, the rolling limit's (daily_limit_exceeded) the
# withdrawal requests', the bank accounts' (unknown_bank_account, bank_account_mismatch) the
# pay-in requests'.
_BY_CODE: dict[ErrorCode, type[WalletError]] = {
    ErrorCode.INSUFFICIENT_FUNDS: InsufficientFunds,
    ErrorCode.FRACTIONAL_AMOUNT: FractionalAmount,
    ErrorCode.UNBALANCED: Unbalanced,
    ErrorCode.ALREADY_REVERSED: AlreadyReversed,
    ErrorCode.DUPLICATE_EXTERNAL_REF: DuplicateExternalReference,
    ErrorCode.UNKNOWN_HOLD: UnknownHold,
    ErrorCode.HOLD_ALREADY_RESOLVED: HoldAlreadyResolved,
    ErrorCode.EXCEEDS_HOLD: ExceedsHold,
}


def error_from_outcome(outcome: dict[str, Any]) -> WalletError:
    """Turn a failure reported by the database functions into its error.

    The failure's other fields (account ids, amounts in minor units) are the ledger's
    internals and stay out of the problem document; a caller that can say them in the
    client's terms (a wallet id, an amount in the asset's unit) builds the error itself.
    """
    code = ErrorCode(outcome["error"])
    return _BY_CODE[code](code.replace("_", " "))
