"""A wallet with linked accounts at the in-memory bank provider, and its pay-ins and payouts
driven through the services on the real database, as webhooks would drive them."""

import base64
import os

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from fiat import InMemoryBankProvider, PayinStatus, PayoutStatus, ProviderEvent
from fiat import Payin as ProviderPayin
from fiat import Payout as ProviderPayout
from tests.factories import Factory
from wallet.assets.service import Catalogue
from wallet.bank_accounts.schemas import BankAccountCreate
from wallet.bank_accounts.service import ask_provider, record_link
from wallet.banking.models import EventOutcome
from wallet.banking.service import FeeSchedule
from wallet.database import unit_of_work
from wallet.idempotency.service import IdempotencyKey
from wallet.ledger.repository import balance, user_account
from wallet.payins.models import Payin
from wallet.payins.schemas import PayinCreate
from wallet.payins.service import KeyedPayin, MadePayin, apply_provider_payins, make_payins
from wallet.payouts.models import Payout
from wallet.payouts.service import apply_provider_payout, request_payout
from wallet.payouts.tasks import send_and_resolve_payouts
from wallet.settings import FeeRule

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
FEES = FeeSchedule(
    {
        "payin": {"USD": FeeRule(fixed=25, bps=50), "EUR": FeeRule(fixed=10)},
        "payout": {"USD": FeeRule(fixed=100), "EUR": FeeRule(fixed=100)},
    }
)


@pytest.fixture
def bank() -> InMemoryBankProvider:
    return InMemoryBankProvider(SECRET)


class FakeBankWallet:
    """One tenant's wallet with linked accounts at the fake bank, its pay-ins and payouts."""

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
        (made,) = self.make([self.request(amount, currency)])
        assert isinstance(made, MadePayin) and made.payin is not None, made
        return made.payin

    def request(self, amount: str, currency: str = "USD", key: str | None = None) -> KeyedPayin:
        """A pay-in request into the wallet, as the API makes it, under `key` (a new one)."""
        body = PayinCreate(
            wallet_id=self.wallet,
            bank_account_id=self.account(currency),
            asset=currency,
            amount=amount,
        )
        tenant = self.factory.tenant_id
        idempotency_key = IdempotencyKey.for_request(
            tenant, key or os.urandom(8).hex(), body.model_dump(mode="json")
        )
        return KeyedPayin(tenant, body, idempotency_key)

    def make(self, requests: list[KeyedPayin]) -> list[MadePayin | Exception]:
        """The requests made together, as one API process makes concurrent ones."""
        return make_payins(self.sessions, self.bank, requests, fees=FEES, catalogue=self.catalogue)

    def get(self, payin_id: str) -> Payin:
        with unit_of_work(self.sessions) as session:
            found = session.get(Payin, payin_id)
            assert found is not None
            return found

    def move(self, payment: Payin | Payout, status: PayinStatus | PayoutStatus) -> ProviderEvent:
        """The provider moves the payment; returns its event, not yet delivered to us."""
        assert payment.provider_payment_id is not None
        self.bank.move(payment.provider_payment_id, status)
        return self.bank.events[-1]

    def deliver(self, event: ProviderEvent) -> EventOutcome | None:
        """The event applied as the webhook route applies it: None for one delivered before."""
        with unit_of_work(self.sessions) as session:
            if isinstance(event.data, ProviderPayin):
                [outcome] = apply_provider_payins(session, self.bank.name, [event], self.catalogue)
                return outcome
            assert isinstance(event.data, ProviderPayout)
            return apply_provider_payout(session, self.bank.name, event.data, self.catalogue)

    def request_payout(self, amount: str, currency: str = "USD") -> str:
        with unit_of_work(self.sessions) as session:
            return request_payout(
                session,
                self.factory.tenant_id,
                wallet_id=self.wallet,
                bank_account_id=self.account(currency),
                asset_code=currency,
                amount=amount,
                provider=self.bank.name,
                fees=FEES,
                catalogue=self.catalogue,
            ).id

    def send_payouts(self) -> None:
        send_and_resolve_payouts(self.sessions, self.bank, self.catalogue, retry_after=0)

    def payout(self, payout_id: str) -> Payout:
        with unit_of_work(self.sessions) as session:
            found = session.get(Payout, payout_id)
            assert found is not None
            return found

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
def fake_wallet(
    factory: Factory, bank: InMemoryBankProvider, catalogue: Catalogue
) -> FakeBankWallet:
    return FakeBankWallet(factory, bank, catalogue)
