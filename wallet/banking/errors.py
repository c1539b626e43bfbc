"""Errors of the bank side: an unconfigured or unavailable provider, forged webhooks, fees."""

from wallet.errors import InvalidRequest, NotFound, WalletError


class BankNotConfigured(WalletError):
    status_code = 503
    problem = "bank-not-configured"
    title = "This service has no bank provider configured"


class BankUnavailable(WalletError):
    status_code = 503
    problem = "bank-unavailable"
    title = "The bank did not answer; retry with the same Idempotency-Key"


class UnknownProvider(NotFound):
    problem = "unknown-bank-provider"
    title = "No such bank provider"


class WebhookRefused(WalletError):
    status_code = 401
    problem = "webhook-refused"
    title = "The webhook's signature or timestamp is not valid"


class UnsupportedCurrency(InvalidRequest):
    problem = "unsupported-currency"
    title = "This rail does not move this currency"


class AmountBelowFee(InvalidRequest):
    problem = "amount-below-fee"
    title = "The amount does not cover the fee"
