"""Bank adapter: the provider port, its HTTP client and in-memory fake. Never imports `wallet`.

The sandbox bank (`fiat.sandbox`) is a separate process implementing a provider's HTTP API.
"""

from fiat.client import SandboxBankClient
from fiat.errors import (
    FiatError,
    IdempotencyConflict,
    NotFound,
    OutcomeUnknown,
    ProviderRejected,
    WebhookRejected,
)
from fiat.fake import InMemoryBankProvider
from fiat.model import (
    BalanceReport,
    BankAccountDetails,
    LinkedBankAccount,
    Payin,
    PayinRequest,
    PayinStatus,
    Payment,
    PaymentKind,
    PaymentRequest,
    Payout,
    PayoutRequest,
    PayoutStatus,
    ProviderEvent,
    ReportLine,
    may_follow,
    net_effect,
)
from fiat.provider import MAX_PAYINS_PER_CALL, BankProvider
from fiat.webhooks import SignedDelivery, WebhookVerifier, sign_events

__all__ = [
    "MAX_PAYINS_PER_CALL",
    "BalanceReport",
    "BankAccountDetails",
    "BankProvider",
    "FiatError",
    "IdempotencyConflict",
    "InMemoryBankProvider",
    "LinkedBankAccount",
    "NotFound",
    "OutcomeUnknown",
    "Payin",
    "PayinRequest",
    "PayinStatus",
    "Payment",
    "PaymentKind",
    "PaymentRequest",
    "Payout",
    "PayoutRequest",
    "PayoutStatus",
    "ProviderEvent",
    "ProviderRejected",
    "ReportLine",
    "SandboxBankClient",
    "SignedDelivery",
    "WebhookRejected",
    "WebhookVerifier",
    "may_follow",
    "net_effect",
    "sign_events",
]
