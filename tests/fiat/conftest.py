"""Fixtures of the fiat tests: a sandbox bank process on a free port, a webhook receiver."""

import base64
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fiat import (
    BankProvider,
    Payin,
    PayinRequest,
    ProviderEvent,
    SandboxBankClient,
    WebhookVerifier,
)
from fiat.sandbox import Options, SandboxControl, SandboxProcess, Timings, start_sandbox
from tests.webhook_fixtures import ReceivedRequest, WebhookReceiver, free_port, wait_until

API_KEY = "sk_sandbox_test"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
# Short enough for fast tests, long enough that each step is a distinct webhook.
FAST = Timings(processing=0.05, settle=0.1, returned=0.2, chargeback=0.3)


def sandbox_options(data_path: Path, webhook_url: str) -> Options:
    return Options(
        data_path=data_path,
        port=free_port(),
        api_keys=(API_KEY,),
        webhook_url=webhook_url,
        webhook_secret=WEBHOOK_SECRET,
        timings=FAST,
        tick=0.02,
        webhook_timeout=2.0,
        webhook_retry_base=0.05,
        webhook_retry_max=0.5,
    )


@pytest.fixture(scope="session")
def hooks() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture(scope="session")
def sandbox(
    tmp_path_factory: pytest.TempPathFactory, hooks: WebhookReceiver
) -> Iterator[SandboxProcess]:
    directory = tmp_path_factory.mktemp("sandbox-bank")
    process = start_sandbox(sandbox_options(directory / "bank.sqlite3", hooks.url("unused")))
    yield process
    process.stop()


@pytest.fixture(scope="session")
def control(sandbox: SandboxProcess) -> Iterator[SandboxControl]:
    client = SandboxControl(sandbox.options.url, API_KEY)
    yield client
    client.close()


@pytest.fixture
def bank(sandbox: SandboxProcess) -> Iterator[SandboxBankClient]:
    with SandboxBankClient(sandbox.options.url, API_KEY, WEBHOOK_SECRET, timeout=5.0) as client:
        yield client


def payin_created(bank: BankProvider, request: PayinRequest) -> Payin:
    """The pay-in `bank` created for `request` (a refusal fails the test)."""
    (payin,) = bank.create_payins([request])
    assert isinstance(payin, Payin), payin
    return payin


@dataclass
class Inbox:
    """The webhooks one test receives: its own path on the receiver."""

    receiver: WebhookReceiver
    path: str
    verifier: WebhookVerifier

    def requests(self, payment_id: str) -> list[ReceivedRequest]:
        return [
            request
            for request in self.receiver.received(self.path)
            if payment_id.encode() in request.body
        ]

    def events(self, payment_id: str) -> list[ProviderEvent]:
        """The payment's events in the order they were received, a redelivery again."""
        return [
            event
            for request in self.requests(payment_id)
            for event in self.verifier.verify(request.body, request.headers)
            if event.data.id == payment_id
        ]

    def wait_for(self, payment_id: str, event_type: str) -> list[ProviderEvent]:
        """Every event of the payment received once one of type `event_type` has arrived."""
        wait_until(lambda: event_type in {e.type for e in self.events(payment_id)}, timeout=10)
        return self.events(payment_id)


@pytest.fixture
def inbox(control: SandboxControl, hooks: WebhookReceiver) -> Iterator[Inbox]:
    """Points the sandbox's webhooks at a path of this test's own, with normal behaviour."""
    path = f"hooks/{uuid.uuid4().hex}"
    normal = {
        "outage": "none",
        "duplicate_webhooks": False,
        "reverse_webhooks": False,
        "webhook_hold": 0.0,
        "webhook_batch": Options().webhook_batch,
    }
    control.configure(webhook_url=hooks.url(path), **normal)
    yield Inbox(hooks, path, WebhookVerifier(WEBHOOK_SECRET))
    control.configure(**normal)
