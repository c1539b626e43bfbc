"""Errors of linking bank accounts."""

from wallet.errors import InvalidRequest, NotFound


class UnknownBankAccount(NotFound):
    problem = "unknown-bank-account"
    title = "No such bank account"


class BankAccountRefused(InvalidRequest):
    problem = "bank-account-refused"
    title = "The bank refused this bank account"


class BankAccountMismatch(InvalidRequest):
    problem = "bank-account-mismatch"
    title = "The bank account does not fit this payment"
