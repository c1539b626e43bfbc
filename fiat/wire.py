"""The JSON shape of the port's values, shared by the sandbox bank, its client and webhooks.

Amounts travel as JSON integers in minor units, times as ISO 8601 UTC strings. Decoding a
malformed document raises ValueError (KeyError and TypeError are turned into it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypedDict, TypeVar

from fiat.model import (
    BalanceReport,
    LinkedBankAccount,
    Payin,
    PayinStatus,
    Payment,
    PaymentKind,
    Payout,
    PayoutStatus,
    ProviderEvent,
    ReportLine,
)

Json = dict[str, Any]
T = TypeVar("T")


class PaymentFields(TypedDict):
    """What a pay-in and a payout have in common: all their fields but `status`."""

    id: str
    idempotency_key: str
    bank_account_token: str
    amount: int
    currency: str
    version: int
    created_at: datetime
    updated_at: datetime
    failure_code: str | None


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("a time must be an ISO 8601 string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("a time must carry its UTC offset")
    return moment


def _amount(value: object) -> int:
    # bool is an int in Python; a float or a string is never an amount here.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("an amount must be a JSON integer of minor units")
    return value


def strict(decoder: Callable[[Mapping[str, Any]], T]) -> Callable[[object], T]:
    """Wrap `decoder` so that any shape error in the document surfaces as ValueError."""

    def decode(document: object) -> T:
        if not isinstance(document, Mapping):
            raise ValueError("expected a JSON object")
        try:
            return decoder(document)
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed document: {error!r}") from error

    return decode


def encode_bank_account(account: LinkedBankAccount) -> Json:
    return {
        "object": "bank_account",
        "token": account.token,
        "holder_name": account.holder_name,
        "last4": account.last4,
        "currency": account.currency,
        "country": account.country,
    }


@strict
def decode_bank_account(document: Mapping[str, Any]) -> LinkedBankAccount:
    return LinkedBankAccount(
        token=str(document["token"]),
        holder_name=str(document["holder_name"]),
        last4=str(document["last4"]),
        currency=str(document["currency"]),
        country=str(document["country"]),
    )


def encode_payment(payment: Payment) -> Json:
    return {
        "object": PaymentKind.PAYIN if isinstance(payment, Payin) else PaymentKind.PAYOUT,
        "id": payment.id,
        "idempotency_key": payment.idempotency_key,
        "bank_account": payment.bank_account_token,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status,
        "version": payment.version,
        "created_at": payment.created_at.isoformat(),
        "updated_at": payment.updated_at.isoformat(),
        "failure_code": payment.failure_code,
    }


@strict
def decode_payment(document: Mapping[str, Any]) -> Payment:
    kind = PaymentKind(document["object"])
    failure = document.get("failure_code")
    fields: PaymentFields = {
        "id": str(document["id"]),
        "idempotency_key": str(document["idempotency_key"]),
        "bank_account_token": str(document["bank_account"]),
        "amount": _amount(document["amount"]),
        "currency": str(document["currency"]),
        "version": _amount(document["version"]),
        "created_at": _time(document["created_at"]),
        "updated_at": _time(document["updated_at"]),
        "failure_code": None if failure is None else str(failure),
    }
    if kind is PaymentKind.PAYIN:
        return Payin(status=PayinStatus(document["status"]), **fields)
    return Payout(status=PayoutStatus(document["status"]), **fields)


def encode_report(report: BalanceReport) -> Json:
    return {
        "object": "balance_report",
        "currency": report.currency,
        "balance": report.balance,
        "as_of": report.as_of.isoformat(),
        "lines": [
            {
                "kind": line.kind,
                "payment_id": line.payment_id,
                "idempotency_key": line.idempotency_key,
                "status": line.status,
                "amount": line.amount,
                "net": line.net,
                "version": line.version,
            }
            for line in report.lines
        ],
    }


@strict
def decode_report(document: Mapping[str, Any]) -> BalanceReport:
    return BalanceReport(
        currency=str(document["currency"]),
        balance=_amount(document["balance"]),
        as_of=_time(document["as_of"]),
        lines=tuple(
            ReportLine(
                kind=PaymentKind(line["kind"]),
                payment_id=str(line["payment_id"]),
                idempotency_key=str(line["idempotency_key"]),
                status=str(line["status"]),
                amount=_amount(line["amount"]),
                net=_amount(line["net"]),
                version=_amount(line["version"]),
            )
            for line in document["lines"]
        ),
    )


def encode_event(event: ProviderEvent) -> Json:
    return {
        "id": event.id,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "data": encode_payment(event.data),
    }


@strict
def decode_event(document: Mapping[str, Any]) -> ProviderEvent:
    data = decode_payment(document["data"])
    event_type = str(document["type"])
    if event_type != event_type_of(data):
        raise ValueError(f"event type {event_type!r} does not match its data")
    return ProviderEvent(
        id=str(document["id"]),
        type=event_type,
        created_at=_time(document["created_at"]),
        data=data,
    )


def decode_delivery(document: object) -> tuple[ProviderEvent, ...]:
    """The events of one webhook delivery, `{"events": [event, ...]}`: at least one."""
    if not isinstance(document, Mapping):
        raise ValueError("expected a JSON object")
    events = document.get("events")
    if not isinstance(events, list) or not events:
        raise ValueError("a delivery carries a non-empty list of events")
    return tuple(decode_event(event) for event in events)


def event_type_of(payment: Payment) -> str:
    """`payin.<status>` or `payout.<status>`: the event announcing the payment's status."""
    kind = PaymentKind.PAYIN if isinstance(payment, Payin) else PaymentKind.PAYOUT
    return f"{kind}.{payment.status}"
