"""Errors of pay-ins."""

from wallet.errors import NotFound


class UnknownPayin(NotFound):
    problem = "unknown-payin"
    title = "No such pay-in"
