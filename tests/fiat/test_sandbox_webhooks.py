"""Webhooks from the sandbox bank: signed, verified, refused when forged or stale, duplicated,
out of order, retried."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from fiat import (
    BankAccountDetails,
    PayoutRequest,
    ProviderEvent,
    SandboxBankClient,
    WebhookRejected,
    WebhookVerifier,
)
from fiat.sandbox import SandboxControl
from fiat.webhooks import delivery_id, sign_body
from tests.fiat.conftest import WEBHOOK_SECRET, Inbox
from tests.webhook_fixtures import WebhookReceiver, wait_until

OTHER_SECRET = "whsec_" + "A" * 43 + "="


def payout(bank: SandboxBankClient, amount: int = 1_200) -> str:
    details = BankAccountDetails(uuid.uuid4().hex, "Alan Turing", "11112222", "EUR", "DE")
    token = bank.link_bank_account(details).token
    return bank.create_payout(PayoutRequest(uuid.uuid4().hex, token, amount, "EUR")).id


def test_each_delivery_arrives_signed_under_an_id_of_its_events_and_verifies(
    bank: SandboxBankClient, inbox: Inbox
) -> None:
    payout_id = payout(bank)
    inbox.wait_for(payout_id, "payout.paid")

    for request in inbox.requests(payout_id):
        events = bank.parse_webhook(request.body, request.headers)
        assert request.headers["webhook-id"] == delivery_id([e.id for e in events])
        sent_at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
        assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)
        assert {e.data.id for e in events} == {payout_id}
    assert [e.data.version for e in inbox.events(payout_id)] == [1, 2, 3]


def test_what_is_due_at_once_goes_in_deliveries_of_several_payments_each_in_order(
    bank: SandboxBankClient, control: SandboxControl, inbox: Inbox
) -> None:
    control.configure(webhook_hold=1.0, webhook_batch=6)
    payouts = [payout(bank) for _ in range(3)]
    for payout_id in payouts:
        inbox.wait_for(payout_id, "payout.paid")

    deliveries = [
        bank.parse_webhook(request.body, request.headers)
        for request in inbox.receiver.received(inbox.path)
    ]
    assert sorted(len(events) for events in deliveries) == [3, 6]
    for events in deliveries:
        for payout_id in {e.data.id for e in events}:
            mine = [e for e in events if e.data.id == payout_id]
            assert [e.type for e in mine] == ["payout.pending", "payout.processing", "payout.paid"]


def test_forged_tampered_stale_and_malformed_webhooks_are_refused(
    bank: SandboxBankClient, inbox: Inbox
) -> None:
    payout_id = payout(bank)
    (event,) = inbox.wait_for(payout_id, "payout.pending")[:1]
    request = inbox.requests(payout_id)[0]
    body, headers = request.body, request.headers
    now = datetime.now(UTC)
    tampered = body.replace(b'"amount":1200', b'"amount":9200')
    assert tampered != body

    message_id = headers["webhook-id"]

    def signed(data: bytes, at: datetime) -> dict[str, str]:
        return sign_body(WEBHOOK_SECRET, message_id, data, at).headers

    refused: list[tuple[bytes, dict[str, str]]] = [
        (body, sign_body(OTHER_SECRET, message_id, body).headers),
        (tampered, headers),
        (body, signed(body, now - timedelta(minutes=10))),
        (body, signed(body, now + timedelta(minutes=10))),
        (body, {k: v for k, v in headers.items() if k != "webhook-signature"}),
        (body, {**headers, "webhook-signature": "v1,not base64!"}),
        (body, {**headers, "webhook-signature": "garbage"}),
        (body, {**headers, "webhook-id": "msg_other"}),
        (b"[1, 2]", signed(b"[1, 2]", now)),
    ]
    for forged_body, forged_headers in refused:
        with pytest.raises(WebhookRejected):
            bank.parse_webhook(forged_body, forged_headers)
    assert event in bank.parse_webhook(body, signed(body, now))


@pytest.mark.parametrize(
    "document",
    [
        {"events": [{"id": "evt_1", "type": "payout.paid", "data": {"amount": 1.5}}]},
        {"events": []},
        {"id": "evt_1", "type": "payout.paid", "data": {"amount": 1.5}},
    ],
    ids=["a malformed event", "no events", "an event outside a delivery"],
)
def test_a_body_that_is_not_a_delivery_is_refused_after_its_signature_checks(
    document: object,
) -> None:
    verifier = WebhookVerifier(WEBHOOK_SECRET)
    body = json.dumps(document).encode()

    with pytest.raises(WebhookRejected, match="not a provider delivery"):
        verifier.verify(body, sign_body(WEBHOOK_SECRET, "msg_1", body).headers)


def test_duplicated_delivery_sends_each_event_twice_under_the_same_id(
    bank: SandboxBankClient, control: SandboxControl, inbox: Inbox
) -> None:
    control.configure(duplicate_webhooks=True)
    payout_id = payout(bank)
    inbox.wait_for(payout_id, "payout.paid")
    wait_until(lambda: len(inbox.events(payout_id)) == 6)

    ids = [r.headers["webhook-id"] for r in inbox.requests(payout_id)]
    assert all(ids.count(i) == 2 for i in ids)
    events = [e.id for e in inbox.events(payout_id)]
    assert all(events.count(i) == 2 for i in events)


def test_reversed_delivery_sends_a_payments_later_events_first(
    bank: SandboxBankClient, control: SandboxControl, inbox: Inbox
) -> None:
    control.configure(reverse_webhooks=True, webhook_hold=1.0)
    payout_id = payout(bank)
    events = inbox.wait_for(payout_id, "payout.pending")

    assert [e.type for e in events] == ["payout.paid", "payout.processing", "payout.pending"]
    assert [e.data.version for e in events] == [3, 2, 1]


# Only a 2xx accepts a delivery (Standard Webhooks); a redirect is not followed.
@pytest.mark.parametrize("refusals", [(500, 503, 500), (301, 302, 307)])
def test_a_refused_delivery_is_retried_until_it_is_accepted(
    bank: SandboxBankClient,
    control: SandboxControl,
    hooks: WebhookReceiver,
    inbox: Inbox,
    refusals: tuple[int, int, int],
) -> None:
    hooks.answer(inbox.path, *refusals)
    payout_id = payout(bank)
    events = inbox.wait_for(payout_id, "payout.paid")

    def delivered(event: ProviderEvent) -> bool:
        (state,) = [e for e in control.events() if e["id"] == event.id]
        return state["delivered_at"] is not None

    wait_until(lambda: len({e.id for e in inbox.events(payout_id)}) == 3)
    wait_until(lambda: all(delivered(e) for e in inbox.events(payout_id)))
    # Three deliveries refused, each of at least one event; then each event accepted once.
    assert len(inbox.events(payout_id)) >= 3 + 3
    attempts = [e["attempts"] for e in control.events() if e["id"] in {x.id for x in events}]
    assert sum(attempts) == len(inbox.events(payout_id))


def test_a_slow_delivery_holds_back_no_other_payments_events(
    bank: SandboxBankClient, inbox: Inbox, hooks: WebhookReceiver
) -> None:
    hooks.slow(b'"amount":7373', 3.0)
    slow = payout(bank, amount=7_373)
    wait_until(lambda: bool(inbox.requests(slow)), timeout=5)  # being delivered
    fast = payout(bank)

    inbox.wait_for(fast, "payout.paid")

    assert len(inbox.requests(slow)) == 1  # its first delivery is not answered yet
