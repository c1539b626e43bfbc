"""Plain values crossing the bank-provider port: bank accounts, pay-ins, payouts, reports, events.

Amounts are ints in the currency's minor unit (cents for USD and EUR) with an ISO 4217 code
beside them; nothing here is ever a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class PaymentKind(StrEnum):
    PAYIN = "payin"
    PAYOUT = "payout"


class PayinStatus(StrEnum):
    """pending (waiting for the customer's money) -> processing -> succeeded | failed;
    succeeded -> returned | charged_back."""

    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETURNED = "returned"
    CHARGED_BACK = "charged_back"


class PayoutStatus(StrEnum):
    """pending -> processing -> paid | failed; paid -> returned."""

    PENDING = "pending"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    RETURNED = "returned"


_PAYIN_NEXT: dict[PayinStatus, frozenset[PayinStatus]] = {
    PayinStatus.PENDING: frozenset({PayinStatus.PROCESSING, PayinStatus.FAILED}),
    PayinStatus.PROCESSING: frozenset({PayinStatus.SUCCEEDED, PayinStatus.FAILED}),
    PayinStatus.SUCCEEDED: frozenset({PayinStatus.RETURNED, PayinStatus.CHARGED_BACK}),
    PayinStatus.FAILED: frozenset(),
    PayinStatus.RETURNED: frozenset(),
    PayinStatus.CHARGED_BACK: frozenset(),
}
_PAYOUT_NEXT: dict[PayoutStatus, frozenset[PayoutStatus]] = {
    PayoutStatus.PENDING: frozenset({PayoutStatus.PROCESSING, PayoutStatus.FAILED}),
    PayoutStatus.PROCESSING: frozenset({PayoutStatus.PAID, PayoutStatus.FAILED}),
    PayoutStatus.PAID: frozenset({PayoutStatus.RETURNED}),
    PayoutStatus.FAILED: frozenset(),
    PayoutStatus.RETURNED: frozenset(),
}


def may_follow(current: PayinStatus | PayoutStatus, new: PayinStatus | PayoutStatus) -> bool:
    """Whether a payment in status `current` may move directly to `new` at the provider."""
    if isinstance(current, PayinStatus) and isinstance(new, PayinStatus):
        return new in _PAYIN_NEXT[current]
    if isinstance(current, PayoutStatus) and isinstance(new, PayoutStatus):
        return new in _PAYOUT_NEXT[current]
    return False


def net_effect(kind: PaymentKind, status: str, amount: int) -> int:
    """A payment's effect on our balance at the provider: a succeeded pay-in adds its amount, a
    paid payout takes it; any other status (including returned and charged back) nets to 0."""
    if kind is PaymentKind.PAYIN and status == PayinStatus.SUCCEEDED:
        return amount
    if kind is PaymentKind.PAYOUT and status == PayoutStatus.PAID:
        return -amount
    return 0


@dataclass(frozen=True, slots=True)
class BankAccountDetails:
    """What a customer types to link an account; sent to the provider, never stored by us."""

    idempotency_key: str
    holder_name: str
    account_number: str
    currency: str
    country: str


@dataclass(frozen=True, slots=True)
class LinkedBankAccount:
    """All we keep of a bank account: the provider's token and what a person needs to see."""

    token: str
    holder_name: str
    last4: str
    currency: str
    country: str


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """Move `amount` minor units of `currency` from or to the linked `bank_account_token`."""

    idempotency_key: str
    bank_account_token: str
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class PayinRequest(PaymentRequest):
    """Collect the amount from the customer's linked account."""


@dataclass(frozen=True, slots=True)
class PayoutRequest(PaymentRequest):
    """Send the amount to the customer's linked account."""


@dataclass(frozen=True, slots=True)
class Payin:
    """A pay-in as the provider sees it. `version` grows by one at each status change, so of two
    snapshots of one pay-in the one with the higher version is the newer."""

    id: str
    idempotency_key: str
    bank_account_token: str
    amount: int
    currency: str
    status: PayinStatus
    version: int
    created_at: datetime
    updated_at: datetime
    failure_code: str | None = None


@dataclass(frozen=True, slots=True)
class Payout:
    """A payout as the provider sees it; `version` as for `Payin`."""

    id: str
    idempotency_key: str
    bank_account_token: str
    amount: int
    currency: str
    status: PayoutStatus
    version: int
    created_at: datetime
    updated_at: datetime
    failure_code: str | None = None


Payment = Payin | Payout


@dataclass(frozen=True, slots=True)
class ReportLine:
    """One payment behind a balance: `net` is its signed effect on the balance (a succeeded
    pay-in +amount, a paid payout -amount, returned, charged back or failed ones 0);
    `version` is the payment's version when the report was made (see `Payin`)."""

    kind: PaymentKind
    payment_id: str
    idempotency_key: str
    status: str
    amount: int
    net: int
    version: int


@dataclass(frozen=True, slots=True)
class BalanceReport:
    """Our balance at the provider in one currency: `balance` is the sum of the lines' `net`."""

    currency: str
    balance: int
    as_of: datetime
    lines: tuple[ReportLine, ...]


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A verified webhook event: `data` is the payment's snapshot after the change.

    `id` is stable across redeliveries (store each event once by it); `type` is
    `payin.<status>` or `payout.<status>`.
    """

    id: str
    type: str
    created_at: datetime
    data: Payment
