"""Pay-ins through the service on the real database, with the in-memory bank provider.

The provider is the port's fake, driven by the test: each snapshot is applied as a webhook
would apply it, in whatever order the test chooses.
"""

import base64
import os

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from fiat import (
    BankAccountDetails,
    InMemoryBankProvider,
    OutcomeUnknown,
    PayinRequest,
    PayinStatus,
    ProviderEvent,
)
from fiat import (
    Payin as ProviderPayin,
)
from tests.factories import Factory
from wallet.assets.service import Catalogue
from wallet.bank_accounts.schemas import BankAccountCreate
from wallet.bank_accounts.service import ask_provider, record_link
from wallet.banking.models import EventOutcome
from wallet.banking.service import FeeSchedule
from wallet.database import unit_of_work
from wallet.ledger.repository import balance, user_account
from wallet.payins.models import Payin
from wallet.payins.schemas import PayinCreate
from wallet.payins.service import apply_provider_payin, start_payin, submit_payin
from wallet.payins.tasks import resolve_unresolved_payins
from wallet.settings import FeeRule
from wallet.transfers.service import TransferRequest

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
FEES = FeeSchedule({"payin": {"USD": FeeRule(fixed=25, bps=50), "EUR": FeeRule(fixed=10)}})


@pytest.fixture
def bank() -> InMemoryBankProvider:
    return InMemoryBankProvider(SECRET)


class Payins:
    """One tenant's wallet with a linked account at the fake bank, and its pay-ins."""

    def __init__(self, factory: Factory, bank: InMemoryBankProvider, catalogue: Catalogue) -> None:
        self.factory, self.bank, self.catalogue = factory, bank, catalogue
        self.sessions: sessionmaker[Session] = factory.sessions
        self.wallet = factory.wallet()
        self.accounts: dict[str, str] = {}

    def account(self, currency: str) -> str:
        if currency not in self.accounts:
            request = BankAccountCreate(
                wallet_id=self.wallet,
                holder_name="Ada Lovelace",
                account_number="DE0012345678",
                currency=currency,
                country="DE",
            )
            linked = ask_provider(self.bank, request, f"link-{self.wallet}-{currency}")
            with unit_of_work(self.sessions) as session:
                account, _ = record_link(
                    session,
                    self.factory.tenant_id,
                    self.wallet,
                    linked,
                    provider=self.bank.name,
                    catalogue=self.catalogue,
                )
            self.accounts[currency] = account.id
        return self.accounts[currency]

    def create(self, amount: str, currency: str = "USD") -> Payin:
        request = PayinCreate(
            wallet_id=self.wallet,
            bank_account_id=self.account(currency),
            asset=currency,
            amount=amount,
        )
        with unit_of_work(self.sessions) as session:
            payin_id = start_payin(
                session,
                self.factory.tenant_id,
                request,
                provider=self.bank.name,
                fees=FEES,
                catalogue=self.catalogue,
            ).id
        submit_payin(self.sessions, self.bank, payin_id, self.catalogue)
        return self.get(payin_id)

    def get(self, payin_id: str) -> Payin:
        with unit_of_work(self.sessions) as session:
            found = session.get(Payin, payin_id)
            assert found is not None
            return found

    def move(self, payin: Payin, status: PayinStatus) -> ProviderEvent:
        """The provider moves the pay-in; returns its event, not yet delivered to us."""
        assert payin.provider_payment_id is not None
        self.bank.move(payin.provider_payment_id, status)
        return self.bank.events[-1]

    def deliver(self, event: ProviderEvent) -> EventOutcome:
        assert isinstance(event.data, ProviderPayin)
        with unit_of_work(self.sessions) as session:
            return apply_provider_payin(session, self.bank.name, event.data, self.catalogue)

    def balance(self, currency: str = "USD") -> tuple[int, int, int]:
        with unit_of_work(self.sessions) as session:
            found = balance(session, user_account(session, self.wallet, currency))
            return found.posted, found.pending_in, found.available

    def wallet_status(self) -> str:
        with unit_of_work(self.sessions) as session:
            return str(
                session.execute(
                    text("SELECT status FROM wallets WHERE id = :id"), {"id": self.wallet}
                ).scalar_one()
            )


@pytest.fixture
def payins(factory: Factory, bank: InMemoryBankProvider, catalogue: Catalogue) -> Payins:
    return Payins(factory, bank, catalogue)


def test_pending_in_then_credited_less_the_fee(payins: Payins) -> None:
    payin = payins.create("100.00")
    # 0.25 fixed + 50 bps of 100.00 = 0.75
    assert (payin.status, payin.fee, payin.provider_version) == ("pending", 75, 1)
    assert payins.balance() == (0, 9925, 0)

    processing = payins.move(payin, PayinStatus.PROCESSING)
    succeeded = payins.move(payin, PayinStatus.SUCCEEDED)
    assert payins.deliver(processing) is EventOutcome.APPLIED
    assert payins.deliver(succeeded) is EventOutcome.APPLIED
    assert payins.get(payin.id).status == "succeeded"
    assert payins.balance() == (9925, 0, 9925)


def test_a_newer_event_first_and_the_older_one_changes_nothing(payins: Payins) -> None:
    payin = payins.create("20.00", "EUR")
    processing = payins.move(payin, PayinStatus.PROCESSING)
    succeeded = payins.move(payin, PayinStatus.SUCCEEDED)

    assert payins.deliver(succeeded) is EventOutcome.APPLIED
    assert payins.deliver(processing) is EventOutcome.STALE
    assert payins.deliver(succeeded) is EventOutcome.STALE
    assert payins.get(payin.id).status == "succeeded"
    assert payins.balance("EUR") == (1990, 0, 1990)


def test_failed_releases_the_pending_in(payins: Payins) -> None:
    payin = payins.create("30.13")
    payins.deliver(payins.move(payin, PayinStatus.FAILED))
    assert payins.get(payin.id).status == "failed"
    assert payins.balance() == (0, 0, 0)


def test_returned_after_success_reverses_the_credit(payins: Payins) -> None:
    payin = payins.create("10.31")
    payins.move(payin, PayinStatus.PROCESSING)
    payins.move(payin, PayinStatus.SUCCEEDED)
    # Only the last event arrives: the pay-in is credited and reversed in one step.
    returned = payins.move(payin, PayinStatus.RETURNED)
    assert payins.deliver(returned) is EventOutcome.APPLIED
    found = payins.get(payin.id)
    assert found.status == "returned"
    assert found.credit_transaction_id is not None and found.reversal_transaction_id is not None
    assert payins.balance() == (0, 0, 0)


def test_chargeback_after_the_money_was_spent_restricts_the_wallet(payins: Payins) -> None:
    payin = payins.create("50.66")
    payins.move(payin, PayinStatus.PROCESSING)
    payins.deliver(payins.move(payin, PayinStatus.SUCCEEDED))
    credited = payins.balance()[0]
    other = payins.factory.wallet("other")
    payins.factory.transfer(
        TransferRequest(payins.factory.tenant_id, payins.wallet, other, "USD", credited - 100)
    )

    payins.deliver(payins.move(payin, PayinStatus.CHARGED_BACK))

    assert payins.get(payin.id).status == "charged_back"
    assert payins.balance() == (100 - credited, 0, 100 - credited)
    assert payins.wallet_status() == "restricted"
    with pytest.raises(Exception, match="restricted"):
        payins.factory.transfer(
            TransferRequest(payins.factory.tenant_id, payins.wallet, other, "USD", 1)
        )
    # Money may still come in, to settle the debt.
    payins.factory.transfer(
        TransferRequest(payins.factory.tenant_id, other, payins.wallet, "USD", credited - 100)
    )
    assert payins.balance()[0] == 0


def test_a_lost_answer_is_unknown_until_the_provider_is_asked(payins: Payins) -> None:
    payins.account("USD")
    payins.bank.fail_next(OutcomeUnknown("timed out"), after_effect=True)
    payin = payins.create("12.00")
    assert payin.status == "unknown"
    assert payins.balance() == (0, 0, 0)

    resolve_unresolved_payins(payins.sessions, payins.bank, payins.catalogue, older_than=0)
    resolve_unresolved_payins(payins.sessions, payins.bank, payins.catalogue, older_than=0)

    assert payins.get(payin.id).status == "pending"
    created = [e for e in payins.bank.events if e.data.idempotency_key == payin.id]
    assert len(created) == 1
    assert payins.balance()[1] == 1200 - 31


def test_never_taken_by_the_provider_is_created_under_the_same_key(payins: Payins) -> None:
    payins.account("USD")
    payins.bank.fail_next(OutcomeUnknown("connection refused"))
    payin = payins.create("12.00")
    assert payin.status == "unknown"

    resolve_unresolved_payins(payins.sessions, payins.bank, payins.catalogue, older_than=0)

    assert payins.get(payin.id).status == "pending"
    assert payins.bank.get_payin(payin.id).idempotency_key == payin.id


def test_an_event_for_a_payment_we_do_not_know_is_unmatched(payins: Payins) -> None:
    other_bank = InMemoryBankProvider(SECRET)
    linked = other_bank.link_bank_account(BankAccountDetails("k", "Bob", "12345678", "USD", "US"))
    stranger = other_bank.create_payin(PayinRequest("pin_nobody", linked.token, 500, "USD"))
    event = ProviderEvent("evt_x", "payin.pending", stranger.created_at, stranger)
    assert payins.deliver(event) is EventOutcome.UNMATCHED
