"""Errors of payouts."""

from wallet.errors import NotFound


class UnknownPayout(NotFound):
    problem = "unknown-payout"
    title = "No such payout"
