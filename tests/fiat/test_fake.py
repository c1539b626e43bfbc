"""The in-memory provider: the port's contract without a process, driven by the test."""

import pytest

from fiat import (
    BankAccountDetails,
    IdempotencyConflict,
    InMemoryBankProvider,
    NotFound,
    OutcomeUnknown,
    PayinRequest,
    PayinStatus,
    PayoutRequest,
    PayoutStatus,
    ProviderRejected,
    WebhookRejected,
)
from tests.fiat.conftest import WEBHOOK_SECRET, payin_created


@pytest.fixture
def fake() -> InMemoryBankProvider:
    return InMemoryBankProvider(WEBHOOK_SECRET)


def linked(fake: InMemoryBankProvider, currency: str = "USD") -> str:
    details = BankAccountDetails("link-1", "Ada Lovelace", "000123456789", currency, "US")
    account = fake.link_bank_account(details)
    assert (account.last4, fake.get_bank_account(account.token)) == ("6789", account)
    assert fake.link_bank_account(details) == account
    return account.token


def test_a_payin_moves_along_its_lifecycle_and_each_move_is_a_verifiable_webhook(
    fake: InMemoryBankProvider,
) -> None:
    payin = payin_created(fake, PayinRequest("in-1", linked(fake), 1_000, "USD"))

    for status in (PayinStatus.PROCESSING, PayinStatus.SUCCEEDED, PayinStatus.CHARGED_BACK):
        delivery = fake.move(payin.id, status)
        (event,) = fake.parse_webhook(delivery.body, delivery.headers)
        assert (event.type, event.data.status) == (f"payin.{status}", status)
    assert fake.get_payin("in-1").version == 4
    assert [e.type for e in fake.events] == [
        "payin.pending",
        "payin.processing",
        "payin.succeeded",
        "payin.charged_back",
    ]


def test_only_valid_transitions_are_allowed(fake: InMemoryBankProvider) -> None:
    payout = fake.create_payout(PayoutRequest("out-1", linked(fake), 1_000, "USD"))

    with pytest.raises(ValueError, match="cannot become"):
        fake.move(payout.id, PayoutStatus.PAID)
    with pytest.raises(ValueError, match="cannot become"):
        fake.move(payout.id, PayinStatus.PROCESSING)


def test_keys_replay_and_conflict(fake: InMemoryBankProvider) -> None:
    token = linked(fake)
    request = PayoutRequest("out-1", token, 1_000, "USD")
    payout = fake.create_payout(request)
    fake.move(payout.id, PayoutStatus.PROCESSING)

    assert fake.create_payout(request) == payout
    with pytest.raises(IdempotencyConflict):
        fake.create_payout(PayoutRequest("out-1", token, 999, "USD"))
    assert fake.get_payout("out-1").status is PayoutStatus.PROCESSING
    with pytest.raises(NotFound):
        fake.get_payin("out-1")


def test_an_unknown_outcome_may_or_may_not_have_taken_effect(fake: InMemoryBankProvider) -> None:
    token = linked(fake)
    fake.fail_next(OutcomeUnknown("timeout"))
    with pytest.raises(OutcomeUnknown):
        fake.create_payout(PayoutRequest("lost", token, 100, "USD"))
    with pytest.raises(NotFound):
        fake.get_payout("lost")

    fake.fail_next(OutcomeUnknown("timeout after the bank accepted"), after_effect=True)
    with pytest.raises(OutcomeUnknown):
        fake.create_payout(PayoutRequest("taken", token, 100, "USD"))
    assert fake.get_payout("taken").amount == 100


@pytest.mark.parametrize(
    ("token", "amount", "currency", "code"),
    [
        ("ba_unknown", 100, "USD", "bank_account_unknown"),
        (None, 100, "EUR", "currency_mismatch"),
        (None, 0, "USD", "amount_invalid"),
    ],
)
def test_bad_payments_are_refused(
    fake: InMemoryBankProvider, token: str | None, amount: int, currency: str, code: str
) -> None:
    request = PayinRequest("in-1", token or linked(fake), amount, currency)

    (refused,) = fake.create_payins([request])

    assert isinstance(refused, ProviderRejected)
    assert refused.code == code


def test_the_report_nets_settled_payments_per_currency(fake: InMemoryBankProvider) -> None:
    token = linked(fake)
    payin = payin_created(fake, PayinRequest("in-1", token, 5_000, "USD"))
    payout = fake.create_payout(PayoutRequest("out-1", token, 2_000, "USD"))
    fake.move(payin.id, PayinStatus.PROCESSING)
    fake.move(payin.id, PayinStatus.SUCCEEDED)
    fake.move(payout.id, PayoutStatus.PROCESSING)
    fake.move(payout.id, PayoutStatus.PAID)
    fake.create_payout(PayoutRequest("out-2", token, 700, "USD"))

    (report,) = fake.balance_reports()

    assert (report.currency, report.balance) == ("USD", 3_000)
    assert [(line.idempotency_key, line.net) for line in report.lines] == [
        ("in-1", 5_000),
        ("out-1", -2_000),
        ("out-2", 0),
    ]


def test_a_webhook_signed_with_another_secret_is_refused(fake: InMemoryBankProvider) -> None:
    other = InMemoryBankProvider("whsec_" + "B" * 43 + "=")
    payin = payin_created(other, PayinRequest("in-1", linked(other), 100, "USD"))
    delivery = other.move(payin.id, PayinStatus.PROCESSING)

    with pytest.raises(WebhookRejected):
        fake.parse_webhook(delivery.body, delivery.headers)
