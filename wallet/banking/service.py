"""The bank provider the settings choose, the fee schedule, and the ledger against the bank.

`open_bank` is the one place that picks an implementation of the `fiat.BankProvider` port:
the sandbox bank over HTTP, or the in-memory fake. Fees are a fixed amount plus basis points
of the amount, per rail and currency, rounded up to the minor unit.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.orm import Session

from fiat import BankProvider, InMemoryBankProvider, PaymentKind, SandboxBankClient, net_effect
from wallet.banking.errors import AmountBelowFee, UnsupportedCurrency
from wallet.banking.repository import bank_account_name
from wallet.settings import FeeRule, Settings


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


@dataclass(frozen=True)
class FeeQuote:
    rail: Rail
    asset: str
    amount: int
    fee: int


@dataclass(frozen=True)
class FeeSchedule:
    rules: Mapping[str, Mapping[str, FeeRule]]

    def quote(self, rail: Rail, asset: str, amount: int) -> FeeQuote:
        """The fee of moving `amount` of `asset` on `rail`; refused if it eats the amount."""
        rule = self.rules.get(rail, {}).get(asset)
        if rule is None:
            raise UnsupportedCurrency(f"{rail} does not move {asset}")
        fee = rule.fixed + -(-amount * rule.bps // 10_000)
        if fee >= amount:
            raise AmountBelowFee(f"the {rail} fee is {fee} minor units of {asset}", fee=str(fee))
        return FeeQuote(rail, asset, amount, fee)


@dataclass(frozen=True)
class ProviderDifference:
    """A disagreement between the ledger and the provider's report, with what is behind it."""

    currency: str
    ledger: int
    provider: int
    records: list[str]


def compare_with_provider(session: Session, bank: BankProvider) -> list[ProviderDifference]:
    """Compare what the ledger says the provider holds for us (`bank:<provider>` per currency)
    with the provider's balance reports; each difference lists the payments that disagree."""
    held = {
        row.asset: -int(row.posted)
        for row in session.execute(
            text("SELECT asset, posted FROM accounts WHERE system_name = :name"),
            {"name": bank_account_name(bank.name)},
        )
    }
    ours = {
        row.id: (row.asset, int(row.amount), row.status)
        for row in session.execute(
            text("SELECT id, asset, amount, status FROM payins WHERE provider = :provider"),
            {"provider": bank.name},
        )
    }
    differences = []
    reports = {report.currency: report for report in bank.balance_reports()}
    for currency in sorted(held.keys() | reports.keys()):
        report = reports.get(currency)
        ledger_balance = held.get(currency, 0)
        provider_balance = 0 if report is None else report.balance
        records = []
        seen = set()
        for line in () if report is None else report.lines:
            seen.add(line.idempotency_key)
            asset, amount, status = ours.get(line.idempotency_key, (currency, 0, "missing"))
            our_net = net_effect(PaymentKind.PAYIN, status, amount)
            if line.kind is PaymentKind.PAYIN and (our_net != line.net or amount != line.amount):
                records.append(
                    f"{line.idempotency_key} ({line.payment_id}): ledger {status} {amount} "
                    f"net {our_net}, provider {line.status} {line.amount} net {line.net}"
                )
        for payin_id, (asset, amount, status) in sorted(ours.items()):
            our_net = net_effect(PaymentKind.PAYIN, status, amount)
            if asset == currency and payin_id not in seen and our_net:
                records.append(f"{payin_id}: ledger {status} {amount}, unknown to the provider")
        if ledger_balance != provider_balance or records:
            differences.append(
                ProviderDifference(currency, ledger_balance, provider_balance, records)
            )
    return differences
