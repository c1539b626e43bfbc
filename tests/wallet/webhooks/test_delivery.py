"""The relay and the deliveries as plain functions, on the real database and a real receiver.

No Celery here: a delivery is "handed over" to a list the test reads, or to a sender that
fails as a downed broker does.
"""

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from tests.factories import Factory
from tests.webhook_fixtures import (
    NOWHERE,
    WebhookReceiver,
    add_endpoint,
    deliveries_of,
    emit_committed,
)
from wallet.database import unit_of_work
from wallet.webhooks.attempt import AttemptOutcome, DeliveryOptions, RetryPolicy, deliver
from wallet.webhooks.dispatch import relay_outbox, sweep_due_deliveries
from wallet.webhooks.egress import webhook_client
from wallet.webhooks.models import DeliveryStatus
from wallet.webhooks.secrets import SecretBox
from wallet.webhooks.service import (
    list_attempts,
)

# Other tests leave due deliveries in the shared database: the sweeps here take them all.
ALL_DUE = 100_000

FAST = DeliveryOptions(
    retry=RetryPolicy(base=0.05, factor=2, maximum=0.2, give_up_after=3600), timeout=5, lease=30
)
# Retries late enough that a call at once after a failure surely finds the delivery not due.
PATIENT = DeliveryOptions(
    retry=RetryPolicy(base=1, factor=1, maximum=1, give_up_after=3600), timeout=5, lease=30
)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with webhook_client(allow_private=True, timeout=5) as client:
        yield client


def test_an_event_goes_to_the_tenants_subscribed_endpoints_only(
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    receiver: WebhookReceiver,
    client: httpx.Client,
) -> None:
    other = Factory(sessions, factory.catalogue)
    tenant = factory.tenant_id
    exact, secret = add_endpoint(
        sessions, secret_box, tenant, receiver.url("exact"), ["transfer.created"]
    )
    everything, _ = add_endpoint(sessions, secret_box, tenant, receiver.url("all"), ["*"])
    deposits, _ = add_endpoint(
        sessions, secret_box, tenant, receiver.url("deposits"), ["deposit.*"]
    )
    foreign, _ = add_endpoint(sessions, secret_box, other.tenant_id, receiver.url("foreign"), ["*"])
    event_id = emit_committed(sessions, tenant)
    handed: list[str] = []
    relay_outbox(sessions, handed.append)
    mine = {
        endpoint.id: deliveries_of(sessions, tenant, endpoint.id)
        for endpoint in (exact, everything, deposits)
    }
    assert [d.event_id for d in mine[exact.id]] == [event_id]
    assert [d.event_id for d in mine[everything.id]] == [event_id]
    assert mine[deposits.id] == []
    assert deliveries_of(sessions, other.tenant_id, foreign.id) == []
    assert {mine[exact.id][0].id, mine[everything.id][0].id} <= set(handed)

    outcome = deliver(
        sessions, mine[exact.id][0].id, client=client, secrets=secret_box, options=FAST
    )
    assert outcome is not None and outcome.status is DeliveryStatus.DELIVERED
    (request,) = receiver.received("exact")
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["id"] == event_id and payload["type"] == "transfer.created"
    assert payload["data"] == {"x": 1}
    assert request.headers["webhook-id"] == event_id
    (delivered,) = deliveries_of(sessions, tenant, exact.id)
    assert delivered.status is DeliveryStatus.DELIVERED
    assert delivered.attempt_count == 1 and delivered.last_status_code == 200
    assert delivered.delivered_at is not None and delivered.next_attempt_at is None
    # A delivered delivery is not attempted again, however often its task arrives.
    assert deliver(sessions, delivered.id, client=client, secrets=secret_box, options=FAST) is None
    assert len(receiver.received("exact")) == 1


def test_relaying_twice_or_side_by_side_creates_each_delivery_once(
    factory: Factory, sessions: sessionmaker[Session], secret_box: SecretBox
) -> None:
    endpoint, _ = add_endpoint(sessions, secret_box, factory.tenant_id, NOWHERE, ["*"])
    events = {emit_committed(sessions, factory.tenant_id) for _ in range(60)}
    handed: list[str] = []
    lock = threading.Lock()

    def send(delivery_id: str) -> None:
        with lock:
            handed.append(delivery_id)

    relays = [
        threading.Thread(target=relay_outbox, args=(sessions, send), kwargs={"batch_size": 7})
        for _ in range(4)
    ]
    for relay in relays:
        relay.start()
    for relay in relays:
        relay.join()
    relay_outbox(sessions, send)
    deliveries = deliveries_of(sessions, factory.tenant_id, endpoint.id)
    assert sorted(d.event_id for d in deliveries) == sorted(events)
    mine = {d.id for d in deliveries}
    assert sorted(i for i in handed if i in mine) == sorted(mine)


def test_a_failing_receiver_is_retried_with_backoff_and_each_attempt_recorded(
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    receiver: WebhookReceiver,
    client: httpx.Client,
) -> None:
    endpoint, secret = add_endpoint(
        sessions, secret_box, factory.tenant_id, receiver.url("flaky"), ["transfer.created"]
    )
    receiver.answer("flaky", 500, 503)
    emit_committed(sessions, factory.tenant_id)
    relay_outbox(sessions, lambda delivery_id: None)
    (delivery,) = deliveries_of(sessions, factory.tenant_id, endpoint.id)

    first = deliver(sessions, delivery.id, client=client, secrets=secret_box, options=PATIENT)
    assert first is not None and first.status is DeliveryStatus.PENDING
    assert first.status_code == 500
    # Not due yet: a duplicate task does nothing.
    assert (
        deliver(sessions, delivery.id, client=client, secrets=secret_box, options=PATIENT) is None
    )
    (waiting,) = deliveries_of(sessions, factory.tenant_id, endpoint.id)
    assert waiting.last_status_code == 500 and waiting.last_error == "HTTP 500"
    assert waiting.next_attempt_at is not None and waiting.next_attempt_at > waiting.created_at

    outcomes: list[AttemptOutcome] = []
    deadline = time.monotonic() + 10
    while len(outcomes) < 2 and time.monotonic() < deadline:
        outcome = deliver(sessions, delivery.id, client=client, secrets=secret_box, options=PATIENT)
        if outcome is not None:
            outcomes.append(outcome)
        time.sleep(0.01)
    assert [(o.attempt_number, o.status_code, o.status) for o in outcomes] == [
        (2, 503, DeliveryStatus.PENDING),
        (3, 200, DeliveryStatus.DELIVERED),
    ]
    requests = receiver.received("flaky")
    assert len(requests) == 3
    for request in requests:
        Webhook(secret).verify(request.body, request.headers)
    assert len({request.headers["webhook-id"] for request in requests}) == 1
    with unit_of_work(sessions) as session:
        attempts = list_attempts(session, factory.tenant_id, delivery.id)
    assert [(a.attempt_number, a.status_code, a.error) for a in attempts] == [
        (1, 500, "HTTP 500"),
        (2, 503, "HTTP 503"),
        (3, 200, None),
    ]
    assert attempts[0].attempted_at < attempts[1].attempted_at < attempts[2].attempted_at
    assert all(a.duration_ms >= 0 for a in attempts)


def test_a_delivery_is_given_up_only_after_the_retry_period(
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    client: httpx.Client,
) -> None:
    # Nothing listens on port 9 (discard): every attempt fails to connect.
    endpoint, _ = add_endpoint(sessions, secret_box, factory.tenant_id, NOWHERE, ["*"])
    emit_committed(sessions, factory.tenant_id)
    relay_outbox(sessions, lambda delivery_id: None)
    (delivery,) = deliveries_of(sessions, factory.tenant_id, endpoint.id)
    patient = DeliveryOptions(retry=RetryPolicy(base=0, give_up_after=0.5), timeout=2, lease=30)
    outcomes: list[AttemptOutcome] = []
    started = time.monotonic()
    deadline = started + 10
    while not outcomes or outcomes[-1].status is DeliveryStatus.PENDING:
        assert time.monotonic() < deadline
        outcome = deliver(sessions, delivery.id, client=client, secrets=secret_box, options=patient)
        if outcome is not None:
            outcomes.append(outcome)
        time.sleep(0.05)
    # Given up no sooner than the retry period after the first attempt began (which was after
    # `started`), and only after more than one attempt.
    assert time.monotonic() - started >= 0.5
    assert len(outcomes) > 1
    assert outcomes[-1].status is DeliveryStatus.FAILED
    assert all(o.status_code is None and o.error == "connection failed" for o in outcomes)
    (given_up,) = deliveries_of(sessions, factory.tenant_id, endpoint.id)
    assert given_up.status is DeliveryStatus.FAILED and given_up.next_attempt_at is None
    assert deliver(sessions, delivery.id, client=client, secrets=secret_box, options=FAST) is None


def test_deliveries_that_could_not_be_handed_over_wait_for_the_sweep(
    factory: Factory, sessions: sessionmaker[Session], secret_box: SecretBox
) -> None:
    endpoint, _ = add_endpoint(sessions, secret_box, factory.tenant_id, NOWHERE, ["*"])
    events = {emit_committed(sessions, factory.tenant_id) for _ in range(3)}
    sent: list[str] = []

    def broker_down(delivery_id: str) -> None:
        raise ConnectionError("broker unreachable")

    relay_outbox(sessions, broker_down)
    deliveries = deliveries_of(sessions, factory.tenant_id, endpoint.id)
    assert {d.event_id for d in deliveries} == events
    assert all(d.status is DeliveryStatus.PENDING for d in deliveries)
    with unit_of_work(sessions) as session:
        unrelayed = session.execute(
            text("SELECT count(*) FROM outbox WHERE tenant_id = :t AND relayed_at IS NULL"),
            {"t": factory.tenant_id},
        ).scalar_one()
    assert unrelayed == 0  # relayed: the deliveries are in the database, not in the broker

    sweep_due_deliveries(sessions, sent.append, batch_size=ALL_DUE)
    assert {d.id for d in deliveries} <= set(sent)
    # Handed over now: the next sweep leaves them to their tasks...
    sent.clear()
    sweep_due_deliveries(sessions, sent.append, batch_size=ALL_DUE)
    assert not {d.id for d in deliveries} & set(sent)
    # ...until those count as lost.
    time.sleep(0.3)
    sweep_due_deliveries(sessions, sent.append, batch_size=ALL_DUE, requeue_after=0.2)
    assert {d.id for d in deliveries} <= set(sent)


def test_two_workers_with_the_same_delivery_post_it_once(
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    receiver: WebhookReceiver,
) -> None:
    endpoint, _ = add_endpoint(sessions, secret_box, factory.tenant_id, receiver.url("race"), ["*"])
    emit_committed(sessions, factory.tenant_id)
    relay_outbox(sessions, lambda delivery_id: None)
    (delivery,) = deliveries_of(sessions, factory.tenant_id, endpoint.id)
    barrier = threading.Barrier(6)
    outcomes: list[AttemptOutcome | None] = []

    def attempt() -> None:
        with httpx.Client() as client:
            barrier.wait()
            outcomes.append(
                deliver(sessions, delivery.id, client=client, secrets=secret_box, options=FAST)
            )

    workers = [threading.Thread(target=attempt) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len([o for o in outcomes if o is not None]) == 1
    assert len(receiver.received("race")) == 1


def test_a_worker_that_died_mid_attempt_leaves_a_lease_that_expires(
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    receiver: WebhookReceiver,
    client: httpx.Client,
) -> None:
    endpoint, _ = add_endpoint(
        sessions, secret_box, factory.tenant_id, receiver.url("lease"), ["*"]
    )
    emit_committed(sessions, factory.tenant_id)
    relay_outbox(sessions, lambda delivery_id: None)
    (delivery,) = deliveries_of(sessions, factory.tenant_id, endpoint.id)
    # The claim a dying worker would have made: a lease, and no record of the outcome.
    with unit_of_work(sessions) as session:
        session.execute(
            text(
                "UPDATE webhook_deliveries SET attempt_count = 1, enqueued_at = NULL, "
                "next_attempt_at = now() + interval '0.3 seconds' WHERE id = :id"
            ),
            {"id": delivery.id},
        )
    assert deliver(sessions, delivery.id, client=client, secrets=secret_box, options=FAST) is None
    sent: list[str] = []
    sweep_due_deliveries(sessions, sent.append, batch_size=ALL_DUE)
    assert delivery.id not in sent
    time.sleep(0.35)
    sweep_due_deliveries(sessions, sent.append, batch_size=ALL_DUE)
    assert delivery.id in sent
    outcome = deliver(sessions, delivery.id, client=client, secrets=secret_box, options=FAST)
    assert outcome is not None
    assert (outcome.attempt_number, outcome.status) == (2, DeliveryStatus.DELIVERED)
