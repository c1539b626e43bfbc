"""What the sandbox bank does: accounts, pay-ins and payouts, their timed outcomes, reports.

Every status change writes the payment, its `payin.*`/`payout.*` event (the webhook outbox)
and the next scheduled change in one transaction. The outcome rules are listed in the
package docstring (`fiat.sandbox`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fiat.model import (
    BalanceReport,
    LinkedBankAccount,
    Payin,
    PayinStatus,
    Payment,
    PaymentKind,
    PayoutStatus,
    ProviderEvent,
    ReportLine,
    net_effect,
)
from fiat.sandbox.store import transaction
from fiat.webhooks import event_body
from fiat.wire import (
    Json,
    decode_payment,
    encode_bank_account,
    encode_payment,
    event_type_of,
)

SUPPORTED_CURRENCIES = frozenset({"USD", "EUR"})
MAX_AMOUNT = 10**15
FAIL_CENTS = 13
RETURN_CENTS = 31
CHARGEBACK_CENTS = 66
CLOSED_ACCOUNT_SUFFIX = "0000"

_FAILURE_CODES: dict[tuple[PaymentKind, str], str] = {
    (PaymentKind.PAYIN, PayinStatus.FAILED): "insufficient_funds",
    (PaymentKind.PAYOUT, PayoutStatus.FAILED): "account_closed",
    (PaymentKind.PAYIN, PayinStatus.RETURNED): "returned_by_bank",
    (PaymentKind.PAYOUT, PayoutStatus.RETURNED): "returned_by_bank",
    (PaymentKind.PAYIN, PayinStatus.CHARGED_BACK): "disputed",
}


class Refused(Exception):
    """A definite refusal, answered as `{"error": {"code", "message"}}` with `status_code`."""

    def __init__(self, code: str, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code

    def body(self) -> Json:
        return {"error": {"code": self.code, "message": self.message}}


@dataclass(frozen=True, slots=True)
class Timings:
    """Seconds between the steps of a payment; `auto_pay` None: pay-ins wait for `pay`."""

    processing: float = 1.0
    settle: float = 2.0
    returned: float = 10.0
    chargeback: float = 60.0
    auto_pay: float | None = None


def next_transition(
    kind: PaymentKind, status: str, amount: int, timings: Timings
) -> tuple[str, float] | None:
    """The status a payment moves to next by itself, and after how many seconds."""
    cents = amount % 100
    payin = kind is PaymentKind.PAYIN
    settled = PayinStatus.SUCCEEDED if payin else PayoutStatus.PAID
    failed = PayinStatus.FAILED if payin else PayoutStatus.FAILED
    after_settled: tuple[str, float] | None = None
    if cents == RETURN_CENTS:
        after_settled = (PayinStatus.RETURNED if payin else PayoutStatus.RETURNED), timings.returned
    elif cents == CHARGEBACK_CENTS and payin:
        after_settled = PayinStatus.CHARGED_BACK, timings.chargeback
    start_delay = timings.auto_pay if payin else timings.processing
    steps: dict[str, tuple[str, float] | None] = {
        PayinStatus.PENDING: None if start_delay is None else (PayinStatus.PROCESSING, start_delay),
        PayinStatus.PROCESSING: (
            (failed if cents == FAIL_CENTS else settled),
            timings.settle,
        ),
        settled: after_settled,
    }
    return steps.get(status)


def request_hash(request: Json) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _payment(row: sqlite3.Row) -> Payment:
    return decode_payment(
        {
            "object": row["kind"],
            "id": row["id"],
            "idempotency_key": row["idempotency_key"],
            "bank_account": row["bank_account"],
            "amount": row["amount"],
            "currency": row["currency"],
            "status": row["status"],
            "version": row["version"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "failure_code": row["failure_code"],
        }
    )


class SandboxBank:
    """The bank's operations on its SQLite database; `clock` gives Unix seconds."""

    def __init__(
        self,
        db: sqlite3.Connection,
        timings: Timings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.timings = timings
        self.clock = clock

    def once(
        self, scope: str, key: str, request: Json, action: Callable[[], Json]
    ) -> tuple[int, Json]:
        """Run `action` once per (scope, key): a repeat with the same request replays the
        stored answer (a refusal included), with another request it is refused."""
        with transaction(self.db):
            return self._once(scope, key, request, action)

    def once_each(
        self, scope: str, calls: Sequence[tuple[str, Json, Callable[[], Json]]]
    ) -> list[tuple[int, Json]]:
        """`once` for each (key, request, action), all in one transaction; a key reused with
        another request is that call's refusal."""
        with transaction(self.db):
            return [self._answer_once(scope, *call) for call in calls]

    def _answer_once(
        self, scope: str, key: str, request: Json, action: Callable[[], Json]
    ) -> tuple[int, Json]:
        try:
            return self._once(scope, key, request, action)
        except Refused as refusal:
            return refusal.status_code, refusal.body()

    def _once(
        self, scope: str, key: str, request: Json, action: Callable[[], Json]
    ) -> tuple[int, Json]:
        digest = request_hash(request)
        row = self.db.execute(
            "SELECT request_hash, status_code, body FROM idempotency WHERE scope = ? AND key = ?",
            (scope, key),
        ).fetchone()
        if row is not None:
            if row["request_hash"] != digest:
                raise Refused(
                    "idempotency_conflict",
                    "this idempotency key was used with another request",
                    409,
                )
            return row["status_code"], json.loads(row["body"])
        try:
            status_code, body = 201, action()
        except Refused as refusal:
            status_code, body = refusal.status_code, refusal.body()
        self.db.execute(
            "INSERT INTO idempotency (scope, key, request_hash, status_code, body)"
            " VALUES (?, ?, ?, ?, ?)",
            (scope, key, digest, status_code, json.dumps(body)),
        )
        return status_code, body

    def link(self, holder_name: str, account_number: str, currency: str, country: str) -> Json:
        """Tokenize an account; in a transaction (see `once`)."""
        _check_currency(currency)
        if account_number.endswith(CLOSED_ACCOUNT_SUFFIX):
            raise Refused("account_closed", "the bank reports this account as closed")
        account = LinkedBankAccount(
            token=_new_id("ba"),
            holder_name=holder_name,
            last4=account_number[-4:],
            currency=currency,
            country=country,
        )
        self.db.execute(
            "INSERT INTO bank_accounts (token, holder_name, last4, currency, country)"
            " VALUES (?, ?, ?, ?, ?)",
            (account.token, holder_name, account.last4, currency, country),
        )
        return encode_bank_account(account)

    def bank_account(self, token: str) -> LinkedBankAccount:
        row = self.db.execute("SELECT * FROM bank_accounts WHERE token = ?", (token,)).fetchone()
        if row is None:
            raise Refused("not_found", "no such bank account", 404)
        return LinkedBankAccount(**dict(row))

    def create(
        self, kind: PaymentKind, idempotency_key: str, bank_account: str, amount: int, currency: str
    ) -> Json:
        """Create a pay-in or payout; in a transaction (see `once`)."""
        _check_currency(currency)
        if not 0 < amount <= MAX_AMOUNT:
            raise Refused("amount_invalid", f"amount must be 1..{MAX_AMOUNT} minor units")
        try:
            account = self.bank_account(bank_account)
        except Refused:
            raise Refused("bank_account_unknown", "no such bank account") from None
        if account.currency != currency:
            raise Refused("currency_mismatch", f"the bank account holds {account.currency}")
        now = self.clock()
        payment_id = _new_id("pi" if kind is PaymentKind.PAYIN else "po")
        self.db.execute(
            "INSERT INTO payments (id, kind, idempotency_key, bank_account, amount, currency,"
            " status, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 1,"
            " ?, ?)",
            (
                payment_id,
                kind,
                idempotency_key,
                bank_account,
                amount,
                currency,
                _iso(now),
                _iso(now),
            ),
        )
        return encode_payment(self._after_change(payment_id, now))

    def find(self, kind: PaymentKind, idempotency_key: str) -> Payment | None:
        row = self.db.execute(
            "SELECT * FROM payments WHERE kind = ? AND idempotency_key = ?",
            (kind, idempotency_key),
        ).fetchone()
        return None if row is None else _payment(row)

    def get(self, payment_id: str) -> Payment:
        row = self.db.execute("SELECT * FROM payments WHERE id = ?", (payment_id,)).fetchone()
        if row is None:
            raise Refused("not_found", "no such payment", 404)
        return _payment(row)

    def pay(self, payin_id: str) -> Payment:
        """The customer's money arrived for a pending pay-in: it moves to processing."""
        with transaction(self.db):
            payment = self.get(payin_id)
            if not isinstance(payment, Payin) or payment.status != PayinStatus.PENDING:
                raise Refused("not_pending", "only a pending pay-in can be paid", 409)
            return self._move(payment, PayinStatus.PROCESSING, self.clock())

    def advance(self, limit: int = 1000) -> int:
        """Apply scheduled status changes that are due, in one transaction; returns how many."""
        now = self.clock()
        with transaction(self.db):
            due = self.db.execute(
                "SELECT payment_id, status FROM transitions WHERE due_at <= ?"
                " ORDER BY due_at LIMIT ?",
                (now, limit),
            ).fetchall()
            for row in due:
                self._move(self.get(row["payment_id"]), row["status"], now)
        return len(due)

    def amend(self, payment_id: str, amount: int | None, status: str | None) -> Payment:
        """Change a record behind everyone's back: no event, nothing scheduled any more."""
        with transaction(self.db):
            payment = self.get(payment_id)
            self.db.execute(
                "UPDATE payments SET amount = ?, status = ? WHERE id = ?",
                (
                    payment.amount if amount is None else amount,
                    payment.status if status is None else status,
                    payment_id,
                ),
            )
            self.db.execute("DELETE FROM transitions WHERE payment_id = ?", (payment_id,))
            return self.get(payment_id)

    def reports(self) -> list[BalanceReport]:
        as_of = datetime.fromtimestamp(self.clock(), UTC)
        lines: dict[str, list[ReportLine]] = {}
        for row in self.db.execute("SELECT * FROM payments ORDER BY created_at, id"):
            kind = PaymentKind(row["kind"])
            lines.setdefault(row["currency"], []).append(
                ReportLine(
                    kind=kind,
                    payment_id=row["id"],
                    idempotency_key=row["idempotency_key"],
                    status=row["status"],
                    amount=row["amount"],
                    net=net_effect(kind, row["status"], row["amount"]),
                    version=row["version"],
                )
            )
        return [
            BalanceReport(
                currency=currency,
                balance=sum(line.net for line in currency_lines),
                as_of=as_of,
                lines=tuple(currency_lines),
            )
            for currency, currency_lines in sorted(lines.items())
        ]

    def _move(self, payment: Payment, status: str, now: float) -> Payment:
        kind = PaymentKind.PAYIN if isinstance(payment, Payin) else PaymentKind.PAYOUT
        self.db.execute(
            "UPDATE payments SET status = ?, version = version + 1, updated_at = ?,"
            " failure_code = ? WHERE id = ?",
            (status, _iso(now), _FAILURE_CODES.get((kind, status)), payment.id),
        )
        return self._after_change(payment.id, now)

    def _after_change(self, payment_id: str, now: float) -> Payment:
        """Write the event for the payment's new status and schedule its next change."""
        payment = self.get(payment_id)
        kind = PaymentKind.PAYIN if isinstance(payment, Payin) else PaymentKind.PAYOUT
        event = ProviderEvent(
            id=_new_id("evt"),
            type=event_type_of(payment),
            created_at=datetime.fromtimestamp(now, UTC),
            data=payment,
        )
        self.db.execute(
            "INSERT INTO events (id, payment_id, type, body, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (event.id, payment_id, event.type, event_body(event).decode(), now),
        )
        self.db.execute("DELETE FROM transitions WHERE payment_id = ?", (payment_id,))
        step = next_transition(kind, payment.status, payment.amount, self.timings)
        if step is not None:
            status, delay = step
            self.db.execute(
                "INSERT INTO transitions (payment_id, status, due_at) VALUES (?, ?, ?)",
                (payment_id, status, now + delay),
            )
        return payment


def _check_currency(currency: str) -> None:
    if currency not in SUPPORTED_CURRENCIES:
        raise Refused(
            "currency_unsupported", f"supported: {', '.join(sorted(SUPPORTED_CURRENCIES))}"
        )
