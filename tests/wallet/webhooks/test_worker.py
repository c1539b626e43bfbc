"""Events out end to end: a real Celery worker and beat on Redis, a real HTTP receiver."""

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from tests.factories import Factory
from tests.webhook_fixtures import CeleryProcesses, WebhookReceiver, add_endpoint, wait_until
from wallet.celery_app import create_app
from wallet.database import unit_of_work
from wallet.events.service import emit
from wallet.settings import Settings
from wallet.webhooks.models import DeliveryStatus
from wallet.webhooks.secrets import SecretBox
from wallet.webhooks.service import (
    WebhookDelivery,
    list_attempts,
    list_deliveries,
)
from wallet.webhooks.tasks import RELAY_OUTBOX, request_relay


@pytest.fixture(scope="module")
def celery(
    engine: Engine,
    database_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CeleryProcesses]:
    processes = CeleryProcesses(database_url, redis_url, tmp_path_factory.mktemp("celery"))
    processes.start()
    yield processes
    processes.stop()


def deliveries(
    sessions: sessionmaker[Session], tenant_id: str, endpoint_id: str
) -> list[WebhookDelivery]:
    with unit_of_work(sessions) as session:
        return list(list_deliveries(session, tenant_id, endpoint_id, limit=100, before=None))


def test_a_committed_event_arrives_signed_at_the_subscribed_endpoints_only(
    celery: CeleryProcesses,
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    receiver: WebhookReceiver,
) -> None:
    other = Factory(sessions, factory.catalogue)
    subscribed, secret = add_endpoint(
        sessions, secret_box, factory.tenant_id, receiver.url("app"), ["transfer.created"]
    )
    add_endpoint(sessions, secret_box, factory.tenant_id, receiver.url("deposits"), ["deposit.*"])
    add_endpoint(sessions, secret_box, other.tenant_id, receiver.url("other-tenant"), ["*"])
    with unit_of_work(sessions) as session:
        event_id = emit(
            session,
            tenant_id=factory.tenant_id,
            event_type="transfer.created",
            data={"id": "trf_1", "amount": "2.50", "asset": "USD"},
        )

    wait_until(lambda: len(receiver.received("app")) == 1)
    (request,) = receiver.received("app")
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["id"] == event_id == request.headers["webhook-id"]
    assert payload["type"] == "transfer.created"
    assert payload["data"] == {"id": "trf_1", "amount": "2.50", "asset": "USD"}
    wait_until(
        lambda: (
            deliveries(sessions, factory.tenant_id, subscribed.id)[0].status
            is DeliveryStatus.DELIVERED
        )
    )
    time.sleep(1)  # several relays and sweeps later, still nothing anywhere else
    assert receiver.received("deposits") == receiver.received("other-tenant") == []
    assert len(receiver.received("app")) == 1


def test_a_receiver_that_fails_gets_the_event_again_later(
    celery: CeleryProcesses,
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    receiver: WebhookReceiver,
) -> None:
    receiver.answer("flaky", 500)
    endpoint, secret = add_endpoint(
        sessions, secret_box, factory.tenant_id, receiver.url("flaky"), ["*"]
    )
    with unit_of_work(sessions) as session:
        emit(session, tenant_id=factory.tenant_id, event_type="deposit.credited", data={})

    wait_until(
        lambda: (
            [d.status for d in deliveries(sessions, factory.tenant_id, endpoint.id)]
            == [DeliveryStatus.DELIVERED]
        )
    )
    first, second = receiver.received("flaky")
    for request in (first, second):
        Webhook(secret).verify(request.body, request.headers)
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    (delivery,) = deliveries(sessions, factory.tenant_id, endpoint.id)
    assert delivery.attempt_count == 2 and delivery.last_status_code == 200
    with unit_of_work(sessions) as session:
        attempts = list_attempts(session, factory.tenant_id, delivery.id)
    assert [(a.attempt_number, a.status_code) for a in attempts] == [(1, 500), (2, 200)]


def test_a_relay_requested_right_after_a_commit_waits_in_the_queue(
    database_url: str, redis_url: str
) -> None:
    queue = f"wallet-test-{uuid.uuid4().hex[:12]}"  # no worker consumes it
    settings = Settings(
        database_url=SecretStr(database_url),
        broker_url=SecretStr(redis_url),
        celery_queue=queue,
    )
    app = create_app(settings)
    broker = redis.Redis.from_url(redis_url)
    try:
        request_relay(app)
        (message,) = broker.lrange(queue, 0, -1)
        assert json.loads(message)["headers"]["task"] == RELAY_OUTBOX
    finally:
        app.close()
        broker.delete(queue, f"_kombu.binding.{queue}")
        broker.close()


def test_a_rolled_back_transaction_sends_nothing(
    celery: CeleryProcesses,
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    receiver: WebhookReceiver,
) -> None:
    add_endpoint(sessions, secret_box, factory.tenant_id, receiver.url("app"), ["*"])
    with sessions() as session, session.begin() as transaction:
        emit(session, tenant_id=factory.tenant_id, event_type="transfer.created", data={})
        transaction.rollback()
    with unit_of_work(sessions) as session:
        committed = emit(session, tenant_id=factory.tenant_id, event_type="payout.paid", data={})
    wait_until(lambda: len(receiver.received("app")) >= 1)
    time.sleep(1)
    assert [r.headers["webhook-id"] for r in receiver.received("app")] == [committed]
    with unit_of_work(sessions) as session:
        count = session.execute(
            text("SELECT count(*) FROM outbox WHERE tenant_id = :t"), {"t": factory.tenant_id}
        ).scalar_one()
    assert count == 1
