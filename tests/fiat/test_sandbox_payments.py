"""Bank accounts, pay-ins, payouts, idempotency and reports against the sandbox bank over HTTP."""

import uuid

import pytest

from fiat import (
    BankAccountDetails,
    IdempotencyConflict,
    LinkedBankAccount,
    NotFound,
    PayinRequest,
    PayinStatus,
    PaymentKind,
    PayoutRequest,
    PayoutStatus,
    ProviderRejected,
    SandboxBankClient,
)
from fiat.sandbox import SandboxControl, SandboxProcess
from tests.api_helpers import assert_idle_connection_outlives
from tests.fiat.conftest import WEBHOOK_SECRET, Inbox, payin_created
from tests.webhook_fixtures import wait_until


def key() -> str:
    return uuid.uuid4().hex


def link(
    bank: SandboxBankClient, currency: str = "USD", number: str = "000123456789"
) -> LinkedBankAccount:
    return bank.link_bank_account(
        BankAccountDetails(
            idempotency_key=key(),
            holder_name="Ada Lovelace",
            account_number=number,
            currency=currency,
            country="US" if currency == "USD" else "FR",
        )
    )


def test_a_linked_account_keeps_only_the_token_name_last_four_currency_and_country(
    bank: SandboxBankClient,
) -> None:
    account = link(bank, "EUR", "FR7630006000011234567890189")

    assert account.token.startswith("ba_")
    assert (account.holder_name, account.last4, account.currency, account.country) == (
        "Ada Lovelace",
        "0189",
        "EUR",
        "FR",
    )
    assert bank.get_bank_account(account.token) == account


def test_linking_replays_under_the_same_key(bank: SandboxBankClient) -> None:
    details = BankAccountDetails(key(), "Ada Lovelace", "000123456789", "USD", "US")

    assert bank.link_bank_account(details) == bank.link_bank_account(details)


@pytest.mark.parametrize(
    ("number", "currency", "code"),
    [("123450000", "USD", "account_closed"), ("123456789", "GBP", "currency_unsupported")],
)
def test_linking_is_refused_definitely(
    bank: SandboxBankClient, number: str, currency: str, code: str
) -> None:
    with pytest.raises(ProviderRejected) as refused:
        link(bank, currency, number)

    assert refused.value.code == code


def test_an_unknown_token_is_not_found(bank: SandboxBankClient) -> None:
    with pytest.raises(NotFound):
        bank.get_bank_account("ba_unknown")


def test_a_token_is_one_path_segment_whatever_it_holds(bank: SandboxBankClient) -> None:
    account = link(bank)
    for token in (f"../bank_accounts/{account.token}", f"{account.token}?x=1", "ba\x0c", "%2e%2e"):
        with pytest.raises(NotFound):
            bank.get_bank_account(token)


@pytest.mark.parametrize(
    ("amount", "statuses"),
    [
        (10_000, ["pending", "processing", "succeeded"]),
        (10_013, ["pending", "processing", "failed"]),
        (10_031, ["pending", "processing", "succeeded", "returned"]),
        (10_066, ["pending", "processing", "succeeded", "charged_back"]),
    ],
)
def test_a_payin_waits_for_the_customer_then_ends_by_its_cents(
    bank: SandboxBankClient,
    control: SandboxControl,
    inbox: Inbox,
    amount: int,
    statuses: list[str],
) -> None:
    account = link(bank, "EUR")
    request = PayinRequest(key(), account.token, amount, "EUR")

    payin = payin_created(bank, request)
    assert (payin.status, payin.version, payin.amount, payin.currency) == (
        PayinStatus.PENDING,
        1,
        amount,
        "EUR",
    )
    assert control.pay(payin.id).status is PayinStatus.PROCESSING
    events = inbox.wait_for(payin.id, f"payin.{statuses[-1]}")

    assert [e.type for e in events] == [f"payin.{s}" for s in statuses]
    assert [e.data.version for e in events] == list(range(1, len(statuses) + 1))
    assert len({e.id for e in events}) == len(statuses)
    final = bank.get_payin(request.idempotency_key)
    assert final == events[-1].data
    assert final.status == statuses[-1]


@pytest.mark.parametrize(
    ("amount", "statuses"),
    [
        (2_500, ["pending", "processing", "paid"]),
        (2_513, ["pending", "processing", "failed"]),
        (2_531, ["pending", "processing", "paid", "returned"]),
    ],
)
def test_a_payout_ends_by_its_cents(
    bank: SandboxBankClient, inbox: Inbox, amount: int, statuses: list[str]
) -> None:
    account = link(bank, "USD")
    request = PayoutRequest(key(), account.token, amount, "USD")

    payout = bank.create_payout(request)
    events = inbox.wait_for(payout.id, f"payout.{statuses[-1]}")

    assert [e.type for e in events] == [f"payout.{s}" for s in statuses]
    assert bank.get_payout(request.idempotency_key).status == statuses[-1]
    if statuses[-1] == "failed":
        assert events[-1].data.failure_code == "account_closed"


def test_a_pay_in_that_is_not_pending_cannot_be_paid(
    bank: SandboxBankClient, control: SandboxControl
) -> None:
    payin = payin_created(bank, PayinRequest(key(), link(bank).token, 100, "USD"))
    control.pay(payin.id)

    with pytest.raises(Exception, match="409"):
        control.pay(payin.id)


def test_the_same_key_and_request_replay_and_another_request_conflicts(
    bank: SandboxBankClient,
) -> None:
    account = link(bank)
    request = PayoutRequest(key(), account.token, 700, "USD")

    first = bank.create_payout(request)
    assert bank.create_payout(request).id == first.id
    with pytest.raises(IdempotencyConflict):
        bank.create_payout(PayoutRequest(request.idempotency_key, account.token, 701, "USD"))
    assert bank.get_payout(request.idempotency_key).id == first.id


def test_a_refusal_is_replayed_under_its_key(bank: SandboxBankClient) -> None:
    request = PayinRequest(key(), link(bank, "USD").token, 100, "EUR")

    for _ in range(2):
        (refused,) = bank.create_payins([request])
        assert isinstance(refused, ProviderRejected)
        assert refused.code == "currency_mismatch"
    with pytest.raises(NotFound):
        bank.get_payin(request.idempotency_key)


@pytest.mark.parametrize(
    ("token", "amount", "code"),
    [("ba_unknown", 100, "bank_account_unknown"), (None, 0, "amount_invalid")],
)
def test_a_bad_payment_is_refused_definitely(
    bank: SandboxBankClient, token: str | None, amount: int, code: str
) -> None:
    request = PayoutRequest(key(), token or link(bank).token, amount, "USD")

    with pytest.raises(ProviderRejected) as refused:
        bank.create_payout(request)

    assert refused.value.code == code


def test_an_idle_connection_stays_open_longer_than_an_httpx_client_keeps_it(
    sandbox: SandboxProcess,
) -> None:
    assert_idle_connection_outlives(5.0, sandbox.options.url)


def test_a_wrong_api_key_is_refused(sandbox: SandboxProcess) -> None:
    stranger = SandboxBankClient(sandbox.options.url, "sk_wrong", WEBHOOK_SECRET)
    with stranger, pytest.raises(ProviderRejected) as refused:
        stranger.balance_reports()

    assert refused.value.code == "unauthorized"


def test_the_balance_report_lists_the_payments_behind_it_and_shows_a_planted_difference(
    bank: SandboxBankClient, control: SandboxControl
) -> None:
    account = link(bank, "EUR")
    payin = payin_created(bank, PayinRequest(key(), account.token, 50_000, "EUR"))
    control.pay(payin.id)
    payout = bank.create_payout(PayoutRequest(key(), account.token, 20_000, "EUR"))
    wait_until(lambda: bank.get_payin(payin.idempotency_key).status == "succeeded")
    wait_until(lambda: bank.get_payout(payout.idempotency_key).status == "paid")

    def report_of_ours() -> tuple[int, dict[str, int]]:
        (eur,) = [r for r in bank.balance_reports() if r.currency == "EUR"]
        nets = {line.payment_id: line.net for line in eur.lines}
        assert eur.balance == sum(nets.values())
        return eur.balance, {i: nets[i] for i in (payin.id, payout.id)}

    balance, nets = report_of_ours()
    assert nets == {payin.id: 50_000, payout.id: -20_000}
    lines = next(r for r in bank.balance_reports() if r.currency == "EUR").lines
    (line,) = [line for line in lines if line.payment_id == payin.id]
    assert (line.kind, line.idempotency_key, line.status) == (
        PaymentKind.PAYIN,
        payin.idempotency_key,
        "succeeded",
    )

    amended = control.amend(payin.id, amount=49_999)

    assert amended.version == bank.get_payin(payin.idempotency_key).version == 3
    planted_balance, planted = report_of_ours()
    assert planted == {payin.id: 49_999, payout.id: -20_000}
    assert planted_balance == balance - 1
    control.amend(payout.id, status=PayoutStatus.FAILED)
    assert report_of_ours()[1][payout.id] == 0
