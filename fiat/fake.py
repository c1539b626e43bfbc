"""An in-memory `BankProvider` for fast unit tests, driven by the test.

Nothing moves by itself: `move` changes a payment's status (only along the provider's valid
transitions) and returns the signed webhook the provider would send; `fail_next` makes the
next call raise, before or after it takes effect (a timeout after the provider accepted).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from fiat.errors import FiatError, IdempotencyConflict, NotFound, ProviderRejected
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
from fiat.webhooks import SignedDelivery, WebhookVerifier, sign_events
from fiat.wire import PaymentFields, event_type_of

T = TypeVar("T")
R = TypeVar("R")
V = TypeVar("V")
P = TypeVar("P", Payin, Payout)


def _now() -> datetime:
    return datetime.now(UTC)


class InMemoryBankProvider:
    def __init__(
        self,
        webhook_secret: str,
        *,
        name: str = "fake",
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._name = name
        self._secret = webhook_secret
        self._verifier = WebhookVerifier(webhook_secret)
        self._clock = clock
        self._accounts: dict[str, LinkedBankAccount] = {}
        self._links: dict[str, tuple[BankAccountDetails, LinkedBankAccount]] = {}
        # By idempotency key: the request and the first answer, which a replay repeats.
        self._payins: dict[str, tuple[PayinRequest, Payin]] = {}
        self._payouts: dict[str, tuple[PayoutRequest, Payout]] = {}
        # By payment id: the current state.
        self._current: dict[str, Payment] = {}
        self._failure: tuple[FiatError, bool] | None = None
        self.events: list[ProviderEvent] = []

    @property
    def name(self) -> str:
        return self._name

    def fail_next(self, error: FiatError, *, after_effect: bool = False) -> None:
        """Make the next port call raise `error`, after doing its work if `after_effect`."""
        self._failure = (error, after_effect)

    def move(self, payment_id: str, status: PayinStatus | PayoutStatus) -> SignedDelivery:
        """Move a payment to `status` and return the webhook announcing it."""
        if payment_id not in self._current:
            raise NotFound(f"no payment {payment_id!r}")
        payment = self._current[payment_id]
        if not may_follow(payment.status, status):
            raise ValueError(f"{payment.status} cannot become {status}")
        now, version = self._clock(), payment.version + 1
        moved: Payment
        if isinstance(payment, Payin):
            moved = replace(payment, status=PayinStatus(status), version=version, updated_at=now)
        else:
            moved = replace(payment, status=PayoutStatus(status), version=version, updated_at=now)
        self._record(moved)
        return sign_events(self._secret, self.events[-1:])

    def link_bank_account(self, details: BankAccountDetails) -> LinkedBankAccount:
        def link() -> LinkedBankAccount:
            known = self._links.get(details.idempotency_key)
            if known is not None:
                return _replayed(known, details)
            account = LinkedBankAccount(
                token=f"ba_{uuid.uuid4().hex}",
                holder_name=details.holder_name,
                last4=details.account_number[-4:],
                currency=details.currency,
                country=details.country,
            )
            self._links[details.idempotency_key] = (details, account)
            self._accounts[account.token] = account
            return account

        return self._call(link)

    def get_bank_account(self, token: str) -> LinkedBankAccount:
        def get() -> LinkedBankAccount:
            if token not in self._accounts:
                raise NotFound(f"no bank account {token!r}")
            return self._accounts[token]

        return self._call(get)

    def create_payins(
        self, requests: Sequence[PayinRequest]
    ) -> tuple[Payin | ProviderRejected, ...]:
        def create(request: PayinRequest) -> Payin | ProviderRejected:
            known = self._payins.get(request.idempotency_key)
            try:
                if known is not None:
                    return _replayed(known, request)
                payin = Payin(status=PayinStatus.PENDING, **self._new_payment(request, "pi"))
            except ProviderRejected as refusal:
                return refusal
            self._payins[request.idempotency_key] = (request, payin)
            self._record(payin)
            return payin

        return self._call(lambda: tuple(create(request) for request in requests))

    def create_payout(self, request: PayoutRequest) -> Payout:
        def create() -> Payout:
            known = self._payouts.get(request.idempotency_key)
            if known is not None:
                return _replayed(known, request)
            payout = Payout(status=PayoutStatus.PENDING, **self._new_payment(request, "po"))
            self._payouts[request.idempotency_key] = (request, payout)
            self._record(payout)
            return payout

        return self._call(create)

    def get_payin(self, idempotency_key: str) -> Payin:
        return self._call(lambda: self._now_of(Payin, _found(self._payins, idempotency_key)))

    def get_payout(self, idempotency_key: str) -> Payout:
        return self._call(lambda: self._now_of(Payout, _found(self._payouts, idempotency_key)))

    def balance_reports(self) -> tuple[BalanceReport, ...]:
        def reports() -> tuple[BalanceReport, ...]:
            lines: dict[str, list[ReportLine]] = {}
            for payment in self._current.values():
                kind = PaymentKind.PAYIN if isinstance(payment, Payin) else PaymentKind.PAYOUT
                lines.setdefault(payment.currency, []).append(
                    ReportLine(
                        kind=kind,
                        payment_id=payment.id,
                        idempotency_key=payment.idempotency_key,
                        status=payment.status,
                        amount=payment.amount,
                        net=net_effect(kind, payment.status, payment.amount),
                        version=payment.version,
                    )
                )
            return tuple(
                BalanceReport(
                    currency=currency,
                    balance=sum(line.net for line in currency_lines),
                    as_of=self._clock(),
                    lines=tuple(currency_lines),
                )
                for currency, currency_lines in sorted(lines.items())
            )

        return self._call(reports)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> tuple[ProviderEvent, ...]:
        return self._verifier.verify(body, headers)

    def _call(self, action: Callable[[], T]) -> T:
        failure, self._failure = self._failure, None
        if failure is None:
            return action()
        error, after_effect = failure
        if after_effect:
            action()
        raise error

    def _new_payment(self, request: PaymentRequest, prefix: str) -> PaymentFields:
        account = self._accounts.get(request.bank_account_token)
        if account is None:
            raise ProviderRejected("bank_account_unknown", "no such bank account")
        if account.currency != request.currency:
            raise ProviderRejected("currency_mismatch", f"the account holds {account.currency}")
        if request.amount <= 0:
            raise ProviderRejected("amount_invalid", "amount must be positive")
        now = self._clock()
        return {
            "id": f"{prefix}_{uuid.uuid4().hex}",
            "idempotency_key": request.idempotency_key,
            "bank_account_token": request.bank_account_token,
            "amount": request.amount,
            "currency": request.currency,
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "failure_code": None,
        }

    def _record(self, payment: Payment) -> None:
        self._current[payment.id] = payment
        self.events.append(self._event(payment))

    def _now_of(self, kind: type[P], first: P) -> P:
        current = self._current[first.id]
        if not isinstance(current, kind):
            raise TypeError(f"{first.id} changed kind")
        return current

    def _event(self, payment: Payment) -> ProviderEvent:
        return ProviderEvent(
            id=f"evt_{uuid.uuid4().hex}",
            type=event_type_of(payment),
            created_at=self._clock(),
            data=payment,
        )


def _replayed(known: tuple[R, V], request: R) -> V:
    first, answer = known
    if first != request:
        raise IdempotencyConflict("this idempotency key was used with another request")
    return answer


def _found(table: Mapping[str, tuple[object, V]], idempotency_key: str) -> V:
    if idempotency_key not in table:
        raise NotFound(f"nothing was created under idempotency key {idempotency_key!r}")
    return table[idempotency_key][1]
