"""The bank provider the settings choose, the fee schedule, and the ledger against the bank.

`open_bank` is the one place that picks an implementation of the `fiat.BankProvider` port:
the sandbox bank over HTTP, or the in-memory fake. Fees are a fixed amount plus basis points
of the amount, per rail and currency, rounded up to the minor unit.
"""

import logging
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeGuard, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from fiat import (
    BankProvider,
    InMemoryBankProvider,
    OutcomeUnknown,
    PayinRequest,
    Payment,
    PaymentKind,
    PayoutRequest,
    ReportLine,
    SandboxBankClient,
    net_effect,
)
from wallet.assets.service import Asset
from wallet.bank_accounts.models import BankAccount
from wallet.banking.errors import AmountBelowFee, UnsupportedCurrency
from wallet.banking.models import EventOutcome
from wallet.banking.repository import (
    FEES_ACCOUNT,
    bank_account_name,
    fees_account,
    ledger_side,
    provider_account,
)
from wallet.database import run_transaction
from wallet.ledger.reconcile import Check
from wallet.payins.models import UNRESOLVED as PAYIN_UNRESOLVED
from wallet.payins.models import Payin
from wallet.payouts.models import UNRESOLVED as PAYOUT_UNRESOLVED
from wallet.payouts.models import Payout
from wallet.settings import FeeRule, Settings

logger = logging.getLogger(__name__)

# Besides its own functions, the ids of the accounts every payment shares, for the payins and
# payouts areas.
__all__ = [
    "FEES_ACCOUNT",
    "FeeQuote",
    "FeeSchedule",
    "ProviderComparison",
    "Rail",
    "alert_mismatch",
    "apply_snapshot",
    "bank_account_name",
    "bank_for_a_command",
    "compare_with_provider",
    "fees_account",
    "known_payment",
    "log_unmatched",
    "open_bank",
    "provider_account",
    "provider_check",
    "provider_request",
    "record_unresolved",
    "restricted_wallets",
    "run_in_turn",
    "take_snapshot",
]

P = TypeVar("P", Payin, Payout)
R = TypeVar("R", PayinRequest, PayoutRequest)
T = TypeVar("T")


class Rail(StrEnum):
    PAYIN = "payin"
    PAYOUT = "payout"


def open_bank(settings: Settings) -> BankProvider | None:
    """The configured provider, or None when no webhook secret is set (fiat is then off)."""
    if settings.bank_webhook_secret is None:
        return None
    secret = settings.bank_webhook_secret.get_secret_value()
    if settings.bank_provider == "memory":
        return InMemoryBankProvider(secret)
    return SandboxBankClient(
        settings.bank_url,
        settings.bank_api_key.get_secret_value(),
        secret,
        timeout=settings.bank_timeout,
        connect_timeout=min(3.0, settings.bank_timeout),
    )


def provider_request(session: Session, payment: Payin | Payout, kind: type[R]) -> R:
    """The provider request creating `payment`, under our id as its idempotency key."""
    account = session.get_one(BankAccount, payment.bank_account_id)
    return kind(
        idempotency_key=payment.id,
        bank_account_token=account.token,
        amount=payment.amount,
        currency=payment.asset,
    )


def record_unresolved(
    session: Session,
    payment: P | None,
    status: str,
    failure_code: str | None,
    *,
    unresolved: Collection[str],
    book: Callable[[P], None],
    announce: Callable[[P], None],
) -> None:
    """Record what became of a create call (`unknown`, or a definite refusal: failed) on the
    payment (locked), unless a snapshot has moved it on meanwhile; `book` its ledger first."""
    if payment is None or payment.status not in unresolved or payment.status == status:
        return
    book(payment)
    payment.status = status
    payment.failure_code = failure_code
    payment.updated_at = datetime.now(UTC)
    session.flush()
    announce(payment)


def run_in_turn(
    sessions: sessionmaker[Session], work: Callable[[Session], T], *, urgent: bool = False
) -> T:
    """`run_transaction` for the payments' work in this process, one unit at a time: what
    books against `bank:<provider>` and `fees` (accounts every payment shares), and the
    other transactions of a pay-in request. The `urgent` ones (the provider's events) go
    before every other one waiting.

    Waiting here holds no lock and no connection. Without it, each of dozens of concurrent
    webhooks takes a connection and waits on the same row locks, and the holder of the locks
    waits for a CPU behind them between its round trips: the locks are held for tens of
    milliseconds instead of a few. Events first: when the process cannot keep up, the wait
    falls on new requests, not on money the provider has already moved.
    """
    with _PAYMENTS_TURN.taken(urgent):
        return run_transaction(sessions, work)


def run_each_in_turn(
    sessions: sessionmaker[Session],
    works: Iterable[Callable[[Session], T]],
    *,
    urgent: bool = False,
) -> list[T]:
    """`run_in_turn` for each of `works`, each in a transaction of its own, all in one turn.

    Not one transaction for all: several payments' rows and the accounts they share, locked
    one payment after another, would be locked in no one order, and two processes doing so
    deadlock.
    """
    with _PAYMENTS_TURN.taken(urgent):
        return [run_transaction(sessions, work) for work in works]


class _Turn:
    """One holder at a time; an urgent caller goes before every other one waiting.

    The holder hands the turn to the next waiter itself (urgent ones first, each kind in
    order of arrival) and wakes only that one: waking every waiter to look again, dozens of
    threads each time, cost the process more of its interpreter lock than the work in turn.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = False
        self._urgent: deque[threading.Event] = deque()
        self._others: deque[threading.Event] = deque()

    @contextmanager
    def taken(self, urgent: bool) -> Iterator[None]:
        handed: threading.Event | None = None
        with self._lock:
            if self._held:
                handed = threading.Event()
                (self._urgent if urgent else self._others).append(handed)
            else:
                self._held = True
        if handed is not None:
            handed.wait()  # the holder hands the turn over: it stays held
        try:
            yield
        finally:
            with self._lock:
                waiting = self._urgent or self._others
                if waiting:
                    waiting.popleft().set()
                else:
                    self._held = False


_PAYMENTS_TURN = _Turn()


def known_payment(payment: P | None, provider: str, snapshot: Payment) -> TypeGuard[P]:
    """Whether the payment found under a webhook's idempotency key is ours at `provider`."""
    if payment is not None and payment.provider == provider:
        return True
    log_unmatched(provider, snapshot)
    return False


def log_unmatched(provider: str, snapshot: Payment) -> None:
    """No payment of ours at `provider` has the snapshot's idempotency key."""
    logger.warning(
        "%s event for %s (key %s): no such payment of ours",
        provider,
        snapshot.id,
        snapshot.idempotency_key,
    )


def alert_mismatch(payment: Payin | Payout, snapshot: Payment) -> None:
    """The provider reports another amount or currency than we asked for."""
    logger.critical(
        "ALERT %s: the provider reports %d %s, we asked for %d %s; not applied",
        payment.id,
        snapshot.amount,
        snapshot.currency,
        payment.amount,
        payment.asset,
    )


def apply_snapshot(
    session: Session,
    payment: Payin | Payout,
    snapshot: Payment,
    *,
    book: Callable[[str, str], None],
    announce: Callable[[], None],
) -> EventOutcome:
    """Move our record of a payment (locked) to the provider's snapshot if the snapshot is newer
    than the last one applied; on a change of status, `announce` its event and `book` the
    ledger from the old status to the new one, then write the record (its status and ledger
    references together).

    The ledger comes last: its `bank:<provider>` and `fees` accounts are shared by every
    payment, so their row locks are taken as close to the commit as the work allows.
    """
    before = payment.status
    outcome = take_snapshot(payment, snapshot)
    if payment.status != before:
        with session.no_autoflush:
            announce()
            book(before, payment.status)
    session.flush()
    return outcome


def take_snapshot(payment: Payin | Payout, snapshot: Payment) -> EventOutcome:
    """Copy the provider's snapshot onto our record of the payment if it is newer than the last
    one applied and is of the same amount and currency."""
    if snapshot.version <= payment.provider_version:
        return EventOutcome.STALE
    if snapshot.amount != payment.amount or snapshot.currency != payment.asset:
        alert_mismatch(payment, snapshot)
        return EventOutcome.UNMATCHED
    payment.status = snapshot.status.value
    payment.provider_version = snapshot.version
    payment.provider_payment_id = snapshot.id
    payment.failure_code = snapshot.failure_code
    payment.updated_at = datetime.now(UTC)
    return EventOutcome.APPLIED


@contextmanager
def bank_for_a_command(settings: Settings) -> Iterator[BankProvider | None]:
    """`open_bank` for a command that ends: its connections are closed when it is done."""
    bank = open_bank(settings)
    try:
        yield bank
    finally:
        if isinstance(bank, SandboxBankClient):
            bank.close()


@dataclass(frozen=True)
class FeeQuote:
    rail: Rail
    asset: str
    amount: int
    fee: int


@dataclass(frozen=True)
class FeeSchedule:
    rules: Mapping[str, Mapping[str, FeeRule]]

    def quote(self, rail: Rail, asset: Asset, amount: int) -> FeeQuote:
        """The fee of moving `amount` of `asset` on `rail`; refused if it eats the amount."""
        rule = self.rules.get(rail, {}).get(asset.code)
        if rule is None:
            raise UnsupportedCurrency(f"{rail} does not move {asset.code}")
        fee = rule.fixed + -(-amount * rule.bps // 10_000)
        if fee >= amount:
            shown = asset.format(fee)
            raise AmountBelowFee(f"the {rail} fee is {shown} {asset.code}", fee=shown)
        return FeeQuote(rail, asset.code, amount, fee)


@dataclass(frozen=True)
class ProviderComparison:
    """The ledger against the provider's report in one currency.

    `ledger` and `provider` are the balances as each side reports them. `in_flight` lists the
    payments one side has moved on and the other has not yet (the provider's version of the
    payment differs from the one we last applied, or the provider had not been asked yet when
    it reported): they are not differences, and `in_flight_net` is what they account for, so
    that `ledger + in_flight_net` is the provider's balance unless `records` lists real
    differences, each with the payment or ledger entry behind it.
    """

    currency: str
    ledger: int
    provider: int
    in_flight_net: int
    in_flight: list[str]
    records: list[str]


def compare_with_provider(session: Session, bank: BankProvider) -> list[ProviderComparison]:
    """Compare what the ledger says the provider holds for us (`bank:<provider>` per currency)
    with the provider's balance reports, like with like: the report is asked for first, then
    our side is read in one snapshot, so each payment the report holds is known to us, and a
    payment whose versions differ on the two sides is in flight, not a difference."""
    reports = {report.currency: report for report in bank.balance_reports()}
    reported_at = max((report.as_of for report in reports.values()), default=None)
    ours = ledger_side(session, bank.name)
    payments = {
        row.id: _OurPayment(
            PaymentKind(row.kind),
            row.id,
            row.asset,
            int(row.amount),
            row.status,
            int(row.version),
            row.created_at,
        )
        for row in ours.payments
    }
    comparisons = []
    for currency in sorted(ours.balances.keys() | reports.keys()):
        comparison = _Comparison()
        report = reports.get(currency)
        lines = () if report is None else report.lines
        for line in lines:
            comparison.line(line, payments.get(line.idempotency_key))
        reported = {line.idempotency_key for line in lines}
        for payment_id, mine in sorted(payments.items()):
            if mine.asset == currency and payment_id not in reported:
                comparison.only_ours(mine, reported_at if report is None else report.as_of)
        for entry in ours.entries:
            if entry.asset == currency:
                comparison.records.append(
                    f"ledger transaction {entry.id} ({entry.status}, {entry.created_at:%F %T}): "
                    f"{int(entry.amount)} at the provider by no pay-in or payout"
                )
        ledger_balance = ours.balances.get(currency, 0)
        provider_balance = 0 if report is None else report.balance
        unexplained = provider_balance - ledger_balance - comparison.in_flight_net
        if unexplained and not comparison.records:
            comparison.records.append(
                f"{unexplained} between the balances that no payment or ledger entry explains"
            )
        comparisons.append(
            ProviderComparison(
                currency,
                ledger_balance,
                provider_balance,
                comparison.in_flight_net,
                comparison.in_flight,
                comparison.records,
            )
        )
    return comparisons


@dataclass(frozen=True)
class _OurPayment:
    kind: PaymentKind
    id: str
    asset: str
    amount: int
    status: str
    version: int
    created_at: datetime

    @property
    def net(self) -> int:
        """Its effect on what the provider holds for us, by our records."""
        return net_effect(self.kind, self.status, self.amount)

    def __str__(self) -> str:
        return f"{self.kind} {self.id}: ledger {self.status} {self.amount} net {self.net}"


@dataclass
class _Comparison:
    """One currency's payments, sorted into in flight and real differences."""

    in_flight_net: int = 0
    in_flight: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)

    def line(self, line: ReportLine, mine: _OurPayment | None) -> None:
        provider = f"provider {line.status} {line.amount} net {line.net} (v{line.version})"
        if mine is None:
            if line.net:
                self.records.append(
                    f"{line.kind} {line.payment_id}: {provider}, unknown to the ledger"
                )
        elif mine.amount != line.amount or (
            mine.version == line.version and (mine.status != line.status or mine.net != line.net)
        ):
            self.records.append(f"{mine} (v{mine.version}), {provider} ({line.payment_id})")
        elif mine.version != line.version:
            self.in_flight_net += line.net - mine.net
            self.in_flight.append(f"{mine} (v{mine.version}), {provider}")

    def only_ours(self, mine: _OurPayment, reported_at: datetime | None) -> None:
        """A payment the report does not hold: in flight if the provider may not have been
        asked yet when it reported (the payment is newer, or its creation unresolved)."""
        newer = reported_at is not None and mine.created_at > reported_at
        if mine.status in _UNRESOLVED or newer:
            if mine.net:
                self.in_flight_net -= mine.net
                self.in_flight.append(f"{mine}, not yet reported by the provider")
        elif mine.net:
            self.records.append(f"{mine}, unknown to the provider")


_UNRESOLVED = frozenset({*PAYIN_UNRESOLVED, *PAYOUT_UNRESOLVED})


def provider_check(session: Session, bank: BankProvider) -> Check:
    """The ledger's `bank:<provider>` balances against the provider's report, as a check;
    payments in flight are listed beside it, not as violations. A provider that does not
    answer fails it (an error is never a zero balance)."""
    name = f"the ledger's bank:{bank.name} balances match the provider's report"
    try:
        comparisons = compare_with_provider(session, bank)
    except OutcomeUnknown as error:
        return Check(name, [f"the provider did not answer: {error}"])
    violations, notes = [], []
    for comparison in comparisons:
        figures = (
            f"{comparison.currency}: ledger {comparison.ledger}, provider {comparison.provider}, "
            f"in flight {comparison.in_flight_net}"
        )
        if comparison.records:
            violations.append(figures)
            violations.extend(f"  {record}" for record in comparison.records)
        if comparison.in_flight:
            notes.append(f"{figures}; in flight:")
            notes.extend(f"  {payment}" for payment in comparison.in_flight)
    return Check(name, violations, notes)


def restricted_wallets(session: Session) -> list[str]:
    """One line per restricted wallet's negative balance: a reversed pay-in it had spent."""
    rows = session.execute(
        text(
            "SELECT w.id, w.tenant_id, a.asset, a.posted FROM wallets w "
            "JOIN accounts a ON a.wallet_id = w.id "
            "WHERE w.status = 'restricted' AND a.posted < 0 ORDER BY w.id, a.asset"
        )
    )
    return [
        f"wallet {row.id} (tenant {row.tenant_id}) holds {row.posted} minor units of {row.asset}"
        for row in rows
    ]
