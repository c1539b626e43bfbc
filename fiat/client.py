"""`BankProvider` over HTTP, for the sandbox bank's API (`fiat.sandbox`).

Any transport failure (timeout, reset or refused connection), a 5xx, 408 or 429, or a 2xx
whose body is not the expected document is `OutcomeUnknown`; another 4xx is a definite
`ProviderRejected` (404 `NotFound`, 409 on a reused key `IdempotencyConflict`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from fiat.errors import IdempotencyConflict, NotFound, OutcomeUnknown, ProviderRejected
from fiat.model import (
    BalanceReport,
    BankAccountDetails,
    LinkedBankAccount,
    Payin,
    PayinRequest,
    Payment,
    PaymentRequest,
    Payout,
    PayoutRequest,
    ProviderEvent,
)
from fiat.webhooks import WebhookVerifier
from fiat.wire import Json, decode_bank_account, decode_payment, decode_report

T = TypeVar("T")

_NO_ANSWER_STATUSES = frozenset({408, 429})


class SandboxBankClient:
    """The sandbox bank's HTTP API as a `BankProvider`; one keep-alive connection pool."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        webhook_secret: str,
        *,
        name: str = "sandbox",
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
    ) -> None:
        self._name = name
        self._verifier = WebhookVerifier(webhook_secret)
        self._http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            headers={"authorization": f"Bearer {api_key}"},
        )

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxBankClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def link_bank_account(self, details: BankAccountDetails) -> LinkedBankAccount:
        body = {
            "holder_name": details.holder_name,
            "account_number": details.account_number,
            "currency": details.currency,
            "country": details.country,
        }
        answer = self._send("POST", "/v1/bank_accounts", body, details.idempotency_key)
        return _decoded(decode_bank_account, answer)

    def get_bank_account(self, token: str) -> LinkedBankAccount:
        return _decoded(
            decode_bank_account, self._send("GET", f"/v1/bank_accounts/{quote(token, safe='')}")
        )

    def create_payins(
        self, requests: Sequence[PayinRequest]
    ) -> tuple[Payin | ProviderRejected, ...]:
        items = [{"idempotency_key": r.idempotency_key, **_payment_body(r)} for r in requests]
        answers = _list(self._send("POST", "/v1/payin_batches", {"payins": items}))
        if len(answers) != len(requests):
            raise OutcomeUnknown(f"{len(answers)} answers to {len(requests)} pay-ins")
        return tuple(_payin_or_refusal(answer) for answer in answers)

    def create_payout(self, request: PayoutRequest) -> Payout:
        return _expect(Payout, self._create("/v1/payouts", request))

    def get_payin(self, idempotency_key: str) -> Payin:
        return _expect(Payin, self._by_key("/v1/payins", idempotency_key))

    def get_payout(self, idempotency_key: str) -> Payout:
        return _expect(Payout, self._by_key("/v1/payouts", idempotency_key))

    def balance_reports(self) -> tuple[BalanceReport, ...]:
        answer = self._send("GET", "/v1/reports/balances")
        return tuple(_decoded(decode_report, report) for report in _list(answer))

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> tuple[ProviderEvent, ...]:
        return self._verifier.verify(body, headers)

    def _create(self, path: str, request: PaymentRequest) -> Payment:
        answer = self._send("POST", path, _payment_body(request), request.idempotency_key)
        return _decoded(decode_payment, answer)

    def _by_key(self, path: str, idempotency_key: str) -> Payment:
        found = _list(self._send("GET", path, params={"idempotency_key": idempotency_key}))
        if not found:
            raise NotFound(f"nothing was created under idempotency key {idempotency_key!r}")
        return _decoded(decode_payment, found[0])

    def _send(
        self,
        method: str,
        path: str,
        body: Json | None = None,
        idempotency_key: str | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        headers = {} if idempotency_key is None else {"idempotency-key": idempotency_key}
        try:
            response = self._http.request(method, path, json=body, params=params, headers=headers)
        except httpx.HTTPError as error:
            raise OutcomeUnknown(f"{method} {path}: {type(error).__name__}: {error}") from error
        status = response.status_code
        if status >= 500 or status in _NO_ANSWER_STATUSES:
            raise OutcomeUnknown(f"{method} {path}: HTTP {status}")
        try:
            document = response.json()
        except ValueError as error:
            raise OutcomeUnknown(f"{method} {path}: HTTP {status} without JSON") from error
        if response.is_success:
            return document
        code, message = _refusal(document, status)
        if status == 404:
            raise NotFound(f"{code}: {message}")
        if code == "idempotency_conflict":
            raise IdempotencyConflict(message)
        raise ProviderRejected(code, message)


def _payment_body(request: PaymentRequest) -> Json:
    return {
        "bank_account": request.bank_account_token,
        "amount": request.amount,
        "currency": request.currency,
    }


def _payin_or_refusal(answer: object) -> Payin | ProviderRejected:
    if isinstance(answer, dict) and "error" in answer:
        code, message = _refusal(answer, 400)
        if code == "idempotency_conflict":
            return IdempotencyConflict(message)
        return ProviderRejected(code, message)
    return _expect(Payin, _decoded(decode_payment, answer))


def _refusal(document: object, status: int) -> tuple[str, str]:
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict):
        return str(error.get("code", f"http_{status}")), str(error.get("message", ""))
    return f"http_{status}", ""


def _list(answer: Any) -> list[Any]:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list):
        raise OutcomeUnknown("the provider answered a list without its data")
    return data


def _decoded(decoder: Callable[[object], T], document: object) -> T:
    # A 2xx we cannot read tells us nothing about what the provider did.
    try:
        return decoder(document)
    except ValueError as error:
        raise OutcomeUnknown(f"unreadable answer from the provider: {error}") from error


def _expect(kind: type[T], payment: Payment) -> T:
    if not isinstance(payment, kind):
        raise OutcomeUnknown(f"the provider answered a {type(payment).__name__}")
    return payment
