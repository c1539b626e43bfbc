"""Outages and crashes of the sandbox bank: an unknown outcome is resolved by idempotency key."""

import dataclasses
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fiat import (
    BankAccountDetails,
    NotFound,
    OutcomeUnknown,
    PayoutRequest,
    PayoutStatus,
    SandboxBankClient,
)
from fiat.sandbox import SandboxControl, SandboxProcess, start_sandbox
from tests.fiat.conftest import API_KEY, FAST, WEBHOOK_SECRET, Inbox, sandbox_options
from tests.webhook_fixtures import WebhookReceiver, wait_until


def key() -> str:
    return uuid.uuid4().hex


def usd_account(bank: SandboxBankClient) -> str:
    details = BankAccountDetails(key(), "Grace Hopper", "987654321", "USD", "US")
    return bank.link_bank_account(details).token


@pytest.fixture
def impatient(sandbox: SandboxProcess) -> Iterator[SandboxBankClient]:
    """A client that gives up after half a second."""
    with SandboxBankClient(sandbox.options.url, API_KEY, WEBHOOK_SECRET, timeout=0.5) as client:
        yield client


@pytest.mark.parametrize(
    ("outage", "took_effect"),
    [("unavailable", False), ("timeout", False), ("error_after", True), ("timeout_after", True)],
)
def test_an_outage_is_unknown_and_the_key_resolves_it_to_exactly_one_payout(
    *,
    bank: SandboxBankClient,
    impatient: SandboxBankClient,
    control: SandboxControl,
    inbox: Inbox,
    outage: str,
    took_effect: bool,
) -> None:
    request = PayoutRequest(key(), usd_account(bank), 1_000, "USD")
    control.configure(outage=outage, outage_delay=2.0)

    with pytest.raises(OutcomeUnknown):
        impatient.create_payout(request)
    with pytest.raises(OutcomeUnknown):
        impatient.get_payout(request.idempotency_key)
    control.configure(outage="none")

    if took_effect:
        payout = bank.get_payout(request.idempotency_key)
        assert bank.create_payout(request).id == payout.id
    else:
        with pytest.raises(NotFound):
            bank.get_payout(request.idempotency_key)
        payout = bank.create_payout(request)
    inbox.wait_for(payout.id, "payout.paid")
    lines = [
        line
        for report in bank.balance_reports()
        for line in report.lines
        if line.idempotency_key == request.idempotency_key
    ]
    assert [(line.payment_id, line.net) for line in lines] == [(payout.id, -1_000)]


def test_a_bank_that_cannot_be_reached_is_an_unknown_outcome() -> None:
    # Port 9 (discard) refuses connections at once.
    nowhere = SandboxBankClient("http://127.0.0.1:9", API_KEY, WEBHOOK_SECRET)
    with nowhere, pytest.raises(OutcomeUnknown):
        nowhere.create_payout(PayoutRequest(key(), "ba_x", 100, "USD"))


def test_a_killed_sandbox_keeps_what_it_accepted_and_carries_on_after_restart(
    tmp_path: Path, hooks: WebhookReceiver
) -> None:
    path = f"hooks/{uuid.uuid4().hex}"
    options = dataclasses.replace(
        sandbox_options(tmp_path / "bank.sqlite3", hooks.url(path)),
        timings=dataclasses.replace(FAST, processing=1.0),
    )
    first = start_sandbox(options)
    try:
        with SandboxBankClient(options.url, API_KEY, WEBHOOK_SECRET) as bank:
            request = PayoutRequest(key(), usd_account(bank), 4_200, "USD")
            payout = bank.create_payout(request)
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()

    second = start_sandbox(options)
    try:
        with SandboxBankClient(options.url, API_KEY, WEBHOOK_SECRET) as bank:
            assert bank.get_payout(request.idempotency_key).id == payout.id
            assert bank.create_payout(request).id == payout.id

            def received() -> list[str]:
                # At least once: an event sent just before the kill may come again.
                events = [
                    event
                    for request in hooks.received(path)
                    for event in bank.parse_webhook(request.body, request.headers)
                ]
                return list(dict.fromkeys((e.id, e.type) for e in events).keys())

            wait_until(lambda: len(received()) == 3, timeout=10)
            assert [t for _, t in received()] == [
                "payout.pending",
                "payout.processing",
                "payout.paid",
            ]
            assert bank.get_payout(request.idempotency_key).status is PayoutStatus.PAID
    finally:
        second.stop()
