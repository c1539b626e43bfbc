"""Payouts through the service on the real database, with the in-memory bank provider."""

import pytest

from fiat import OutcomeUnknown, PayoutStatus, ProviderRejected
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


def test_a_refusal_releases_the_hold(funded: FakeBankWallet) -> None:
    payout_id = funded.request_payout("5.00")
    funded.bank.fail_next(ProviderRejected("account_closed", "closed"))
    funded.send_payouts()
    assert funded.payout(payout_id).status == "failed"
    assert funded.balance() == (100_00, 0, 100_00)


def test_a_lost_answer_stays_held_and_is_never_sent_twice(funded: FakeBankWallet) -> None:
    payout_id = funded.request_payout("20.00")
    funded.bank.fail_next(OutcomeUnknown("timed out"), after_effect=True)
    funded.send_payouts()  # created at the bank; the answer is lost
    assert funded.payout(payout_id).status == "unknown"
    assert payments_at_the_bank(funded, payout_id) == 1
    assert funded.balance()[2] == 100_00 - 21_00

    funded.bank.fail_next(OutcomeUnknown("timed out"))
    funded.send_payouts()  # the question is lost too: nothing is sent, nothing released
    assert funded.payout(payout_id).status == "unknown"
    for _ in range(3):
        funded.send_payouts()
    assert funded.payout(payout_id).status == "pending"
    assert payments_at_the_bank(funded, payout_id) == 1
    assert funded.balance()[2] == 100_00 - 21_00


def test_a_create_that_never_reached_the_bank_is_sent_again_under_its_key(
    funded: FakeBankWallet,
) -> None:
    payout_id = funded.request_payout("20.00")
    funded.bank.fail_next(OutcomeUnknown("connection refused"))
    funded.send_payouts()
    assert (funded.payout(payout_id).status, payments_at_the_bank(funded, payout_id)) == (
        "unknown",
        0,
    )
    funded.send_payouts()  # asked first: nothing there, so created under the same key
    assert funded.payout(payout_id).status == "pending"
    assert payments_at_the_bank(funded, payout_id) == 1
