"""The bank provider the settings choose, the fee schedule, and the ledger against the bank.

`open_bank` is the one place that picks an implementation of the `fiat.BankProvider` port:
the sandbox bank over HTTP, or the in-memory fake. Fees are a fixed amount plus basis points
of the amount, per rail and currency, rounded up to the minor unit.
"""

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.orm import Session

from fiat import (
    BankProvider,
    InMemoryBankProvider,
    OutcomeUnknown,
    Payment,
    PaymentKind,
    SandboxBankClient,
    net_effect,
)
from wallet.assets.service import Asset
from wallet.banking.errors import AmountBelowFee, UnsupportedCurrency
from wallet.banking.models import EventOutcome
from wallet.banking.repository import bank_account_name
from wallet.ledger.reconcile import Check
from wallet.payins.models import Payin
from wallet.payouts.models import Payout
from wallet.settings import FeeRule, Settings

logger = logging.getLogger(__name__)


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


def take_snapshot(
    payment: Payin | Payout, snapshot: Payment, book: Callable[[str], None]
) -> EventOutcome:
    """Move our record of a payment (locked) to the provider's snapshot if the snapshot is newer
    than the last one applied; `book` first moves the ledger to the snapshot's status."""
    if snapshot.version <= payment.provider_version:
        return EventOutcome.STALE
    if snapshot.amount != payment.amount or snapshot.currency != payment.asset:
        logger.critical(
            "ALERT %s: the provider reports %d %s, we asked for %d %s; not applied",
            payment.id,
            snapshot.amount,
            snapshot.currency,
            payment.amount,
            payment.asset,
        )
        return EventOutcome.UNMATCHED
    book(snapshot.status.value)
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
class ProviderDifference:
    """A disagreement between the ledger and the provider's report, with what is behind it."""

    currency: str
    ledger: int
    provider: int
    records: list[str]


_OUR_PAYMENTS = text(
    "SELECT 'payin' AS kind, id, asset, amount, status FROM payins WHERE provider = :provider "
    "UNION ALL "
    "SELECT 'payout', id, asset, amount, status FROM payouts WHERE provider = :provider"
)


def compare_with_provider(session: Session, bank: BankProvider) -> list[ProviderDifference]:
    """Compare what the ledger says the provider holds for us (`bank:<provider>` per currency)
    with the provider's balance reports; each difference lists the payments behind it whose
    effect on the balance differs (by our records or the provider's), or that only one side
    knows."""
    held = {
        row.asset: -int(row.posted)
        for row in session.execute(
            text("SELECT asset, posted FROM accounts WHERE system_name = :name"),
            {"name": bank_account_name(bank.name)},
        )
    }
    ours = {
        row.id: _OurPayment(PaymentKind(row.kind), row.asset, int(row.amount), row.status)
        for row in session.execute(_OUR_PAYMENTS, {"provider": bank.name})
    }
    reports = {report.currency: report for report in bank.balance_reports()}
    differences = []
    for currency in sorted(held.keys() | reports.keys()):
        report = reports.get(currency)
        lines = () if report is None else report.lines
        records = []
        for line in lines:
            mine = ours.get(line.idempotency_key)
            if mine is None:
                if line.net:
                    records.append(
                        f"{line.kind} {line.payment_id}: provider {line.status} {line.amount} "
                        f"net {line.net}, unknown to the ledger"
                    )
            elif mine.net != line.net or mine.amount != line.amount:
                records.append(
                    f"{line.kind} {line.idempotency_key} ({line.payment_id}): ledger "
                    f"{mine.status} {mine.amount} net {mine.net}, provider {line.status} "
                    f"{line.amount} net {line.net}"
                )
        reported = {line.idempotency_key for line in lines}
        for payment_id, mine in sorted(ours.items()):
            if mine.asset == currency and payment_id not in reported and mine.net:
                records.append(
                    f"{mine.kind} {payment_id}: ledger {mine.status} {mine.amount} net "
                    f"{mine.net}, unknown to the provider"
                )
        ledger_balance = held.get(currency, 0)
        provider_balance = 0 if report is None else report.balance
        if ledger_balance != provider_balance or records:
            differences.append(
                ProviderDifference(currency, ledger_balance, provider_balance, records)
            )
    return differences


@dataclass(frozen=True)
class _OurPayment:
    kind: PaymentKind
    asset: str
    amount: int
    status: str

    @property
    def net(self) -> int:
        """Its effect on what the provider holds for us, by our records."""
        return net_effect(self.kind, self.status, self.amount)


def provider_check(session: Session, bank: BankProvider) -> Check:
    """The ledger's `bank:<provider>` balances against the provider's report, as a check;
    a provider that does not answer fails it (an error is never a zero balance)."""
    name = f"the ledger's bank:{bank.name} balances match the provider's report"
    try:
        differences = compare_with_provider(session, bank)
    except OutcomeUnknown as error:
        return Check(name, [f"the provider did not answer: {error}"])
    violations = []
    for difference in differences:
        violations.append(
            f"{difference.currency}: ledger {difference.ledger}, provider {difference.provider}"
        )
        violations.extend(f"  {record}" for record in difference.records)
    return Check(name, violations)


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
