"""Payouts through the service on the real database, with the in-memory bank provider."""

import pytest

from fiat import FiatError, OutcomeUnknown, Payout, PayoutStatus, ProviderRejected
from tests.fake_bank import FakeBankWallet
from wallet.banking.models import EventOutcome
from wallet.ledger.errors import InsufficientFunds


@pytest.fixture
def funded(fake_wallet: FakeBankWallet) -> FakeBankWallet:
    fake_wallet.factory.fund(fake_wallet.wallet, "USD", 100_00)
    return fake_wallet


def payments_at_the_bank(wallet: FakeBankWallet, key: str) -> int:
    return sum(
        1
        for report in wallet.bank.balance_reports()
        for line in report.lines
        if line.idempotency_key == key
    )


def test_amount_and_fee_are_held_then_posted_when_paid(funded: FakeBankWallet) -> None:
    payout_id = funded.request_payout("30.00")
    assert funded.payout(payout_id).status == "sending"
    assert funded.balance() == (100_00, 0, 100_00 - 31_00)

    funded.send_payouts()
    payout = funded.payout(payout_id)
    assert (payout.status, payout.provider_version) == ("pending", 1)
    assert payments_at_the_bank(funded, payout_id) == 1

    processing = funded.move(payout, PayoutStatus.PROCESSING)
    paid = funded.move(payout, PayoutStatus.PAID)
    assert funded.deliver(paid) is EventOutcome.APPLIED
    assert funded.deliver(processing) is EventOutcome.STALE
    assert funded.payout(payout_id).status == "paid"
    assert funded.balance() == (69_00, 0, 69_00)


def test_failed_releases_the_hold(funded: FakeBankWallet) -> None:
    payout_id = funded.request_payout("30.13")
    funded.send_payouts()
    funded.deliver(funded.move(funded.payout(payout_id), PayoutStatus.FAILED))
    assert funded.payout(payout_id).status == "failed"
    assert funded.balance() == (100_00, 0, 100_00)


def test_returned_after_paid_credits_back(funded: FakeBankWallet) -> None:
    payout_id = funded.request_payout("10.31")
    funded.send_payouts()
    payout = funded.payout(payout_id)
    funded.move(payout, PayoutStatus.PROCESSING)
    funded.deliver(funded.move(payout, PayoutStatus.PAID))
    assert funded.balance()[0] == 100_00 - 11_31
    funded.deliver(funded.move(payout, PayoutStatus.RETURNED))
    assert funded.payout(payout_id).status == "returned"
    assert funded.balance() == (100_00, 0, 100_00)


def test_more_than_available_is_refused_and_nothing_is_held(funded: FakeBankWallet) -> None:
    with pytest.raises(InsufficientFunds):
        funded.request_payout("99.50")
    assert funded.balance() == (100_00, 0, 100_00)


def fail_the_create_after_the_question(
    wallet: FakeBankWallet, monkeypatch: pytest.MonkeyPatch, error: FiatError, *, effect: bool
) -> None:
    """The worker asks by key, then creates: make that create fail (after its effect)."""
    ask = wallet.bank.get_payout

    def ask_then_fail(key: str) -> Payout:
        try:
            return ask(key)
        finally:
            wallet.bank.fail_next(error, after_effect=effect)

    monkeypatch.setattr(wallet.bank, "get_payout", ask_then_fail)


def test_a_refusal_releases_the_hold(
    funded: FakeBankWallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    payout_id = funded.request_payout("5.00")
    refusal = ProviderRejected("account_closed", "closed")
    fail_the_create_after_the_question(funded, monkeypatch, refusal, effect=False)
    funded.send_payouts()
    assert funded.payout(payout_id).status == "failed"
    assert funded.balance() == (100_00, 0, 100_00)


def test_a_lost_answer_stays_held_and_is_never_sent_twice(
    funded: FakeBankWallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    payout_id = funded.request_payout("20.00")
    funded.bank.fail_next(OutcomeUnknown("timed out"))
    funded.send_payouts()  # the question before the create is lost: nothing is sent
    assert funded.payout(payout_id).status == "sending"
    assert payments_at_the_bank(funded, payout_id) == 0

    with monkeypatch.context() as patch:
        lost = OutcomeUnknown("timed out")
        fail_the_create_after_the_question(funded, patch, lost, effect=True)
        funded.send_payouts()  # created at the bank; the answer is lost
    assert funded.payout(payout_id).status == "unknown"
    assert payments_at_the_bank(funded, payout_id) == 1
    assert funded.balance()[2] == 100_00 - 21_00

    for _ in range(3):
        funded.send_payouts()
    assert funded.payout(payout_id).status == "pending"
    assert payments_at_the_bank(funded, payout_id) == 1
    assert funded.balance()[2] == 100_00 - 21_00
