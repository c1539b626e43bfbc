"""Attempts in flight are capped per endpoint and per tenant; a failing endpoint pauses.

Plain functions on the real database, real receivers that hold their answer until released,
and attempts made side by side in threads as a worker's pool makes them.
"""

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from tests.webhook_fixtures import (
    HeldAnswers,
    WebhookReceiver,
    add_endpoint,
    deliveries_of,
    emit_committed,
    raw_receiver,
    wait_until,
)
from wallet.database import unit_of_work
from wallet.webhooks.attempt import AttemptOutcome, DeliveryOptions, RetryPolicy, deliver
from wallet.webhooks.dispatch import relay_outbox
from wallet.webhooks.egress import webhook_client
from wallet.webhooks.models import DeliveryStatus
from wallet.webhooks.secrets import SecretBox

LIMITED = DeliveryOptions(
    retry=RetryPolicy(base=0.3, factor=2, maximum=0.3, give_up_after=3600),
    timeout=10,
    lease=30,
    endpoint_concurrency=2,
    tenant_concurrency=3,
    pause_after=2,
    busy_wait=60,
)
# Pauses of 30 s after two failures in a row.
PATIENT = replace(LIMITED, retry=RetryPolicy(base=30, factor=2, maximum=30, give_up_after=3600))


@pytest.fixture
def held() -> Iterator[tuple[HeldAnswers, str]]:
    answers = HeldAnswers()
    with raw_receiver(answers) as url:
        yield answers, url
        answers.released.set()


class Attempts:
    """Attempts started in threads; their outcomes once they are done."""

    def __init__(self, sessions: sessionmaker[Session], box: SecretBox) -> None:
        self._sessions = sessions
        self._box = box
        self._threads: list[threading.Thread] = []
        self.outcomes: dict[str, AttemptOutcome | None] = {}

    def start(self, delivery_id: str) -> None:
        def attempt() -> None:
            with webhook_client(allow_private=True, timeout=10) as client:
                self.outcomes[delivery_id] = deliver(
                    self._sessions, delivery_id, client=client, secrets=self._box, options=LIMITED
                )

        thread = threading.Thread(target=attempt)
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(30)


def attempt_now(
    sessions: sessionmaker[Session],
    box: SecretBox,
    delivery_id: str,
    options: DeliveryOptions = LIMITED,
) -> object:
    with webhook_client(allow_private=True, timeout=10) as client:
        return deliver(sessions, delivery_id, client=client, secrets=box, options=options)


def test_attempts_in_flight_are_capped_per_endpoint_and_per_tenant(
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    held: tuple[HeldAnswers, str],
) -> None:
    answers, url = held
    tenant = factory.tenant_id
    other = Factory(sessions, factory.catalogue)
    slow, _ = add_endpoint(sessions, secret_box, tenant, f"{url}/slow", ["*"])
    second, _ = add_endpoint(sessions, secret_box, tenant, f"{url}/second", ["*"])
    foreign, _ = add_endpoint(sessions, secret_box, other.tenant_id, f"{url}/foreign", ["*"])
    for _ in range(3):
        emit_committed(sessions, tenant)
    emit_committed(sessions, other.tenant_id)
    relay_outbox(sessions, lambda delivery_id: None)
    to_slow = [d.id for d in deliveries_of(sessions, tenant, slow.id)]
    to_second = [d.id for d in deliveries_of(sessions, tenant, second.id)]
    (to_foreign,) = [d.id for d in deliveries_of(sessions, other.tenant_id, foreign.id)]
    attempts = Attempts(sessions, secret_box)

    attempts.start(to_slow[0])
    attempts.start(to_slow[1])
    wait_until(lambda: answers.held == 2, timeout=15)
    # The endpoint has two attempts in flight: a third waits, and is no attempt.
    assert attempt_now(sessions, secret_box, to_slow[2]) is None
    attempts.start(to_second[0])
    wait_until(lambda: answers.held == 3, timeout=15)
    # The tenant has three in flight: its other endpoint waits too...
    assert attempt_now(sessions, secret_box, to_second[1]) is None
    # ...and another tenant's endpoint does not.
    attempts.start(to_foreign)
    wait_until(lambda: answers.held == 4, timeout=15)
    answers.released.set()
    attempts.join()

    assert [o.status if o else None for o in attempts.outcomes.values()] == [
        DeliveryStatus.DELIVERED
    ] * 4
    waiting = {
        d.id: d
        for endpoint in (slow, second)
        for d in deliveries_of(sessions, tenant, endpoint.id)
        if d.id in (to_slow[2], to_second[1])
    }
    assert len(waiting) == 2
    for delivery in waiting.values():
        assert delivery.status is DeliveryStatus.PENDING and delivery.attempt_count == 0
        assert delivery.next_attempt_at is not None
        assert delivery.next_attempt_at > delivery.created_at + timedelta(seconds=50)


def test_an_endpoint_that_keeps_failing_pauses_until_it_answers_again(
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    receiver: WebhookReceiver,
) -> None:
    tenant = factory.tenant_id
    endpoint, _ = add_endpoint(sessions, secret_box, tenant, receiver.url("down"), ["*"])
    receiver.answer("down", 503, 503)
    for _ in range(3):
        emit_committed(sessions, tenant)
    relay_outbox(sessions, lambda delivery_id: None)
    first, second, third = (d.id for d in deliveries_of(sessions, tenant, endpoint.id))
    outcomes = [attempt_now(sessions, secret_box, d, PATIENT) for d in (first, second)]
    assert [o.status_code for o in outcomes if isinstance(o, AttemptOutcome)] == [503, 503]
    with unit_of_work(sessions) as session:
        paused = session.execute(
            text(
                "SELECT consecutive_failures, paused_until > now() AS paused "
                "FROM webhook_endpoints WHERE id = :id"
            ),
            {"id": endpoint.id},
        ).one()
    assert (paused.consecutive_failures, paused.paused) == (2, True)
    # Paused: the third delivery waits for the pause to end instead of being attempted.
    assert attempt_now(sessions, secret_box, third, PATIENT) is None
    assert len(receiver.received("down")) == 2
    (waiting,) = [d for d in deliveries_of(sessions, tenant, endpoint.id) if d.id == third]
    assert waiting.attempt_count == 0
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at > waiting.created_at + timedelta(seconds=25)

    with unit_of_work(sessions) as session:  # as if the 30-s pause had passed
        session.execute(
            text("UPDATE webhook_endpoints SET paused_until = now() WHERE id = :id"),
            {"id": endpoint.id},
        )
        session.execute(
            text("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = :id"),
            {"id": third},
        )
    outcome = attempt_now(sessions, secret_box, third, PATIENT)
    assert isinstance(outcome, AttemptOutcome)
    assert outcome.status is DeliveryStatus.DELIVERED
    with unit_of_work(sessions) as session:
        failures = session.execute(
            text("SELECT consecutive_failures FROM webhook_endpoints WHERE id = :id"),
            {"id": endpoint.id},
        ).scalar_one()
    assert failures == 0
