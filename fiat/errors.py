"""Typed errors of the bank-provider port.

The one distinction that matters to the caller: `ProviderRejected` is a definite answer (the
provider refused and created nothing), `OutcomeUnknown` is no answer (a timeout, a reset
connection, a 5xx): the request may or may not have taken effect, so it must be resolved by
asking the provider by the same idempotency key, never treated as failed.
"""


class FiatError(Exception):
    """Base class of every error raised by `fiat`."""


class ProviderRejected(FiatError):
    """The provider refused the request; nothing was created or changed. `code` is stable."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class IdempotencyConflict(ProviderRejected):
    """The idempotency key was already used with a different request."""

    def __init__(self, message: str = "") -> None:
        super().__init__("idempotency_conflict", message)


class NotFound(FiatError, LookupError):
    """The provider holds no object under this id, token or idempotency key."""


class OutcomeUnknown(FiatError):
    """No definite answer: the request may have taken effect. Ask again by idempotency key."""


class WebhookRejected(FiatError):
    """An inbound webhook failed verification (signature, timestamp) or is not a valid event."""
