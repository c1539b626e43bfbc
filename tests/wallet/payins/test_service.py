"""Pay-ins through the service on the real database, with the in-memory bank provider.

The provider is the port's fake, driven by the test: each snapshot is applied as a webhook
would apply it, in whatever order the test chooses.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from itertools import chain

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fiat import (
    BankAccountDetails,
    InMemoryBankProvider,
    OutcomeUnknown,
    PayinRequest,
    PayinStatus,
    ProviderEvent,
)
from tests.factories import Factory
from tests.fake_bank import SECRET, FakeBankWallet
from tests.fiat.conftest import payin_created
from wallet.assets.service import Catalogue
from wallet.banking.models import EventOutcome
from wallet.database import unit_of_work
from wallet.idempotency.errors import IdempotencyConflict
from wallet.ledger.models import LedgerTransaction
from wallet.payins.service import KeyedPayin, MadePayin, apply_provider_payins
from wallet.payins.tasks import resolve_unresolved_payins
from wallet.transfers.service import TransferRequest


def test_pending_in_then_credited_less_the_fee(fake_wallet: FakeBankWallet) -> None:
    payin = fake_wallet.create("100.00")
    # 0.25 fixed + 50 bps of 100.00 = 0.75
    assert (payin.status, payin.fee, payin.provider_version) == ("pending", 75, 1)
    assert fake_wallet.balance() == (0, 9925, 0)

    processing = fake_wallet.move(payin, PayinStatus.PROCESSING)
    succeeded = fake_wallet.move(payin, PayinStatus.SUCCEEDED)
    assert fake_wallet.deliver(processing) is EventOutcome.APPLIED
    assert fake_wallet.deliver(succeeded) is EventOutcome.APPLIED
    credited = fake_wallet.get(payin.id)
    assert credited.status == "succeeded"
    assert fake_wallet.balance() == (9925, 0, 9925)
    with unit_of_work(fake_wallet.sessions) as session:
        credit = session.get_one(LedgerTransaction, credited.credit_transaction_id)
        assert (credit.external_kind, credit.external_ref) == ("payin", payin.id)
        assert credit.metadata_["payin_id"] == payin.id


def test_a_newer_event_first_and_the_older_one_changes_nothing(fake_wallet: FakeBankWallet) -> None:
    payin = fake_wallet.create("20.00", "EUR")
    processing = fake_wallet.move(payin, PayinStatus.PROCESSING)
    succeeded = fake_wallet.move(payin, PayinStatus.SUCCEEDED)

    assert fake_wallet.deliver(succeeded) is EventOutcome.APPLIED
    assert fake_wallet.deliver(processing) is EventOutcome.STALE
    assert fake_wallet.deliver(succeeded) is None  # delivered before: not applied again
    assert fake_wallet.get(payin.id).status == "succeeded"
    assert fake_wallet.balance("EUR") == (1990, 0, 1990)


def test_failed_releases_the_pending_in(fake_wallet: FakeBankWallet) -> None:
    payin = fake_wallet.create("30.13")
    fake_wallet.deliver(fake_wallet.move(payin, PayinStatus.FAILED))
    assert fake_wallet.get(payin.id).status == "failed"
    assert fake_wallet.balance() == (0, 0, 0)


def test_returned_after_success_reverses_the_credit(fake_wallet: FakeBankWallet) -> None:
    payin = fake_wallet.create("10.31")
    fake_wallet.move(payin, PayinStatus.PROCESSING)
    fake_wallet.move(payin, PayinStatus.SUCCEEDED)
    # Only the last event arrives: the pay-in is credited and reversed in one step.
    returned = fake_wallet.move(payin, PayinStatus.RETURNED)
    assert fake_wallet.deliver(returned) is EventOutcome.APPLIED
    found = fake_wallet.get(payin.id)
    assert found.status == "returned"
    assert found.credit_transaction_id is not None and found.reversal_transaction_id is not None
    assert fake_wallet.balance() == (0, 0, 0)


def test_chargeback_after_the_money_was_spent_restricts_the_wallet(
    fake_wallet: FakeBankWallet,
) -> None:
    payin = fake_wallet.create("50.66")
    fake_wallet.move(payin, PayinStatus.PROCESSING)
    fake_wallet.deliver(fake_wallet.move(payin, PayinStatus.SUCCEEDED))
    credited = fake_wallet.balance()[0]
    other = fake_wallet.factory.wallet("other")
    fake_wallet.factory.transfer(
        TransferRequest(
            fake_wallet.factory.tenant_id, fake_wallet.wallet, other, "USD", credited - 100
        )
    )

    fake_wallet.deliver(fake_wallet.move(payin, PayinStatus.CHARGED_BACK))

    assert fake_wallet.get(payin.id).status == "charged_back"
    assert fake_wallet.balance() == (100 - credited, 0, 100 - credited)
    assert fake_wallet.wallet_status() == "restricted"
    with pytest.raises(Exception, match="restricted"):
        fake_wallet.factory.transfer(
            TransferRequest(fake_wallet.factory.tenant_id, fake_wallet.wallet, other, "USD", 1)
        )
    # Money may still come in, to settle the debt.
    fake_wallet.factory.transfer(
        TransferRequest(
            fake_wallet.factory.tenant_id, other, fake_wallet.wallet, "USD", credited - 100
        )
    )
    assert fake_wallet.balance()[0] == 0


def test_a_lost_answer_is_unknown_until_the_provider_is_asked(fake_wallet: FakeBankWallet) -> None:
    fake_wallet.account("USD")
    fake_wallet.bank.fail_next(OutcomeUnknown("timed out"), after_effect=True)
    payin = fake_wallet.create("12.00")
    assert payin.status == "unknown"
    assert fake_wallet.balance() == (0, 0, 0)

    resolve_unresolved_payins(
        fake_wallet.sessions, fake_wallet.bank, fake_wallet.catalogue, older_than=0
    )
    resolve_unresolved_payins(
        fake_wallet.sessions, fake_wallet.bank, fake_wallet.catalogue, older_than=0
    )

    assert fake_wallet.get(payin.id).status == "pending"
    created = [e for e in fake_wallet.bank.events if e.data.idempotency_key == payin.id]
    assert len(created) == 1
    assert fake_wallet.balance()[1] == 1200 - 31


def test_never_taken_by_the_provider_is_created_under_the_same_key(
    fake_wallet: FakeBankWallet,
) -> None:
    fake_wallet.account("USD")
    fake_wallet.bank.fail_next(OutcomeUnknown("connection refused"))
    payin = fake_wallet.create("12.00")
    assert payin.status == "unknown"

    resolve_unresolved_payins(
        fake_wallet.sessions, fake_wallet.bank, fake_wallet.catalogue, older_than=0
    )

    assert fake_wallet.get(payin.id).status == "pending"
    assert fake_wallet.bank.get_payin(payin.id).idempotency_key == payin.id


def test_an_event_for_a_payment_we_do_not_know_is_unmatched(fake_wallet: FakeBankWallet) -> None:
    other_bank = InMemoryBankProvider(SECRET)
    linked = other_bank.link_bank_account(BankAccountDetails("k", "Bob", "12345678", "USD", "US"))
    stranger = payin_created(other_bank, PayinRequest("pin_nobody", linked.token, 500, "USD"))
    event = ProviderEvent("evt_x", "payin.pending", stranger.created_at, stranger)
    assert fake_wallet.deliver(event) is EventOutcome.UNMATCHED


def test_a_delivery_of_many_events_applies_each_in_its_order_once(
    fake_wallet: FakeBankWallet,
) -> None:
    first, second = fake_wallet.create("10.00"), fake_wallet.create("20.00")
    first_processing = fake_wallet.move(first, PayinStatus.PROCESSING)
    fake_wallet.move(second, PayinStatus.PROCESSING)  # never delivered: succeeded books it too
    second_succeeded = fake_wallet.move(second, PayinStatus.SUCCEEDED)
    first_succeeded = fake_wallet.move(first, PayinStatus.SUCCEEDED)
    other_bank = InMemoryBankProvider(SECRET)
    linked = other_bank.link_bank_account(BankAccountDetails("k", "Bob", "12345678", "USD", "US"))
    stranger = payin_created(other_bank, PayinRequest("pin_nobody", linked.token, 500, "USD"))
    unknown = ProviderEvent("evt_stranger", "payin.pending", stranger.created_at, stranger)
    delivery = [first_processing, second_succeeded, unknown, first_succeeded, second_succeeded]

    with unit_of_work(fake_wallet.sessions) as session:
        outcomes = apply_provider_payins(
            session, fake_wallet.bank.name, delivery, fake_wallet.catalogue
        )

    applied, unmatched = EventOutcome.APPLIED, EventOutcome.UNMATCHED
    assert outcomes == [applied, applied, unmatched, applied, None]  # the copy: not again
    assert [fake_wallet.get(p.id).status for p in (first, second)] == ["succeeded"] * 2
    # 10.00 and 20.00, each less 0.25 and 50 bps
    assert fake_wallet.balance() == (970 + 1965, 0, 970 + 1965)
    assert fake_wallet.deliver(first_succeeded) is None
    with unit_of_work(fake_wallet.sessions) as session:
        stored = session.execute(
            text("SELECT event_id, outcome FROM provider_events WHERE event_id = ANY(:ids)"),
            {"ids": [e.id for e in delivery]},
        ).all()
    expected = {e.id: "applied" for e in delivery} | {unknown.id: "unmatched"}
    assert dict(stored) == expected


def test_deliveries_applied_at_once_over_the_same_accounts_each_apply_once(
    factory: Factory, bank: InMemoryBankProvider, catalogue: Catalogue
) -> None:
    """Two API processes apply a delivery each at the same moment, both over the same two
    wallets and the shared bank and fee accounts, in opposite orders: each event applies once,
    with no error (a deadlock would be one: nothing here retries), and each wallet is
    credited exactly."""
    wallets = [FakeBankWallet(factory, bank, catalogue) for _ in range(2)]

    def deliver(
        start: threading.Barrier, delivery: list[ProviderEvent]
    ) -> list[EventOutcome | None]:
        start.wait()
        with unit_of_work(factory.sessions) as session:
            return apply_provider_payins(session, bank.name, delivery, catalogue)

    for _ in range(5):
        payins = [(wallet, wallet.create("10.00")) for _ in range(4) for wallet in wallets]
        events = [
            [wallet.move(payin, PayinStatus.PROCESSING), wallet.move(payin, PayinStatus.SUCCEEDED)]
            for wallet, payin in payins
        ]
        deliveries = [list(chain(*events[:4])), list(chain(*events[4:][::-1]))]
        start = threading.Barrier(len(deliveries))
        with ThreadPoolExecutor(len(deliveries)) as pool:
            outcomes = list(pool.map(partial(deliver, start), deliveries))

        assert outcomes == [[EventOutcome.APPLIED] * 8] * 2
    assert [wallet.balance() for wallet in wallets] == [(20 * 970, 0, 20 * 970)] * 2


def test_requests_made_together_are_answered_each_as_if_alone(
    fake_wallet: FakeBankWallet,
) -> None:
    first = fake_wallet.request("10.00", key="together")
    again = fake_wallet.request("10.00", key="together")
    conflicting = fake_wallet.request("11.00", key="together")
    other = fake_wallet.request("12.00", "EUR")
    unknown = fake_wallet.request("13.00")
    unknown = replace(unknown, body=unknown.body.model_copy(update={"wallet_id": "wal_nobody"}))

    made = fake_wallet.make([first, again, conflicting, other, unknown])

    assert isinstance(made[0], MadePayin) and isinstance(made[1], MadePayin)
    assert made[0].payin is not None and made[1].payin is not None
    assert (made[0].outcome.replayed, made[1].outcome.replayed) == (False, True)
    assert made[1].payin.id == made[0].payin.id
    assert made[0].payin.status == "pending"
    assert isinstance(made[2], IdempotencyConflict)
    assert isinstance(made[3], MadePayin) and made[3].payin is not None
    assert (made[3].payin.asset, made[3].payin.status) == ("EUR", "pending")
    # Refused under its key, nothing made.
    assert isinstance(made[4], MadePayin) and made[4].payin is None
    assert made[4].outcome.problem is not None
    assert made[4].outcome.problem["status"] == 404
    assert [e.type for e in fake_wallet.bank.events] == ["payin.pending"] * 2


def test_a_refused_request_is_refused_again_when_retried_under_its_key(
    fake_wallet: FakeBankWallet,
) -> None:
    def request(key: str, amount: str = "10.00", **changes: str) -> KeyedPayin:
        keyed = fake_wallet.request(amount, key=key)
        return replace(keyed, body=keyed.body.model_copy(update=changes))

    in_euros = fake_wallet.account("EUR")
    requests = [
        request("no-account", bank_account_id="bac_" + "a" * 32),
        request("other-currency", bank_account_id=in_euros),
        request("below-fee", "0.25"),
    ]

    def problems() -> list[tuple[bool, int, str]]:
        made = fake_wallet.make(requests)
        found = []
        for one in made:
            assert isinstance(one, MadePayin) and one.payin is None
            assert one.outcome.problem is not None
            problem = one.outcome.problem
            found.append((one.outcome.replayed, problem["status"], problem["type"].split("/")[-1]))
        return found

    refusals = [
        (404, "unknown-bank-account"),
        (422, "bank-account-mismatch"),
        (422, "amount-below-fee"),
    ]
    assert problems() == [(False, *refusal) for refusal in refusals]
    assert problems() == [(True, *refusal) for refusal in refusals]
    with unit_of_work(fake_wallet.sessions) as session:
        session.execute(
            text("UPDATE wallets SET status = 'frozen' WHERE id = :id"), {"id": fake_wallet.wallet}
        )
    (frozen,) = fake_wallet.make([fake_wallet.request("10.00")])
    assert isinstance(frozen, MadePayin) and frozen.outcome.problem is not None
    assert frozen.outcome.problem["type"].endswith("/wallet-not-active")
    assert fake_wallet.bank.events == []


def test_requests_made_together_are_all_unknown_when_their_call_gets_no_answer(
    fake_wallet: FakeBankWallet,
) -> None:
    requests = [fake_wallet.request(amount) for amount in ("1.00", "2.00", "3.00")]
    fake_wallet.bank.fail_next(OutcomeUnknown("timed out"), after_effect=True)

    made = fake_wallet.make(requests)

    payins = [m.payin for m in made if isinstance(m, MadePayin) and m.payin is not None]
    assert [payin.status for payin in payins] == ["unknown"] * 3
    resolve_unresolved_payins(
        fake_wallet.sessions, fake_wallet.bank, fake_wallet.catalogue, older_than=0
    )
    assert [fake_wallet.get(payin.id).status for payin in payins] == ["pending"] * 3
    assert len(fake_wallet.bank.events) == 3


def test_a_request_the_database_refuses_fails_alone(fake_wallet: FakeBankWallet) -> None:
    good = fake_wallet.request("4.00")
    retried = fake_wallet.request("5.00")
    # No text in PostgreSQL may hold a NUL: the database refuses the statement.
    bad = replace(retried, body=retried.body.model_copy(update={"wallet_id": "wal_\x00"}))

    made_good, made_bad = fake_wallet.make([good, bad])

    assert isinstance(made_good, MadePayin) and made_good.payin is not None
    assert made_good.payin.status == "pending"
    assert isinstance(made_bad, DBAPIError)
    # Its key was not kept: a request under it is made.
    (made,) = fake_wallet.make([retried])
    assert isinstance(made, MadePayin) and made.outcome.replayed is False
