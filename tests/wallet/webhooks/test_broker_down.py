"""Broker down means delayed, never lost: Redis is stopped while events are emitted and
relayed, then started again (empty, as a restarted Redis without persistence is)."""

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from tests.factories import Factory
from tests.webhook_fixtures import (
    CeleryProcesses,
    RedisServer,
    WebhookReceiver,
    add_endpoint,
    wait_until,
)
from wallet.celery_app import create_app
from wallet.database import unit_of_work
from wallet.events.service import emit
from wallet.settings import Settings
from wallet.webhooks.dispatch import relay_outbox
from wallet.webhooks.models import DeliveryStatus
from wallet.webhooks.secrets import SecretBox
from wallet.webhooks.service import list_deliveries
from wallet.webhooks.tasks import delivery_sender, request_relay


@dataclass(frozen=True)
class OwnBroker:
    redis: RedisServer
    celery: CeleryProcesses


@pytest.fixture
def own_broker(
    own_redis: RedisServer, start_celery: Callable[[str | None], CeleryProcesses]
) -> OwnBroker:
    """A worker and beat on a Redis of this test's own, which it may stop."""
    return OwnBroker(own_redis, start_celery(own_redis.url))


def test_events_emitted_while_the_broker_is_down_arrive_once_it_is_back(
    own_broker: OwnBroker,
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    receiver: WebhookReceiver,
) -> None:
    own_redis, celery = own_broker.redis, own_broker.celery
    first, first_secret = add_endpoint(
        sessions, secret_box, factory.tenant_id, receiver.url("first"), ["*"]
    )
    second, second_secret = add_endpoint(
        sessions, secret_box, factory.tenant_id, receiver.url("second"), ["transfer.created"]
    )

    def emit_transfer() -> str:
        with unit_of_work(sessions) as session:
            return emit(
                session, tenant_id=factory.tenant_id, event_type="transfer.created", data={}
            )

    before = emit_transfer()
    wait_until(lambda: len(receiver.received()) == 2)

    own_redis.stop()
    relayed_while_down = emit_transfer()
    # A relay running while the broker is down (as the worker's would, had it been mid-run):
    # its deliveries are committed, their tasks cannot be sent.
    app = create_app(
        Settings(
            database_url=SecretStr(celery.env["WALLET_DATABASE_URL"]),
            broker_url=SecretStr(own_redis.url),
            celery_queue=celery.env["WALLET_CELERY_QUEUE"],
        )
    )
    try:
        report = relay_outbox(sessions, delivery_sender(app))
        assert request_relay(app) is False
    finally:
        app.close()
    assert report.handed_over == 0
    # Its deliveries are committed, by this relay or by one of the worker's that was under
    # way when Redis stopped (the outbox gives each event to one relay): no task was sent.
    wait_until(lambda: delivery_count(sessions, factory.tenant_id, (first.id, second.id)) == 4)
    waiting_in_outbox = emit_transfer()
    time.sleep(1.5)
    assert len(receiver.received()) == 2

    own_redis.start()
    expected = {
        (event, path)
        for event in (before, relayed_while_down, waiting_in_outbox)
        for path in ("/first", "/second")
    }
    wait_until(lambda: len(receiver.received()) >= len(expected), timeout=60)
    time.sleep(2)  # several sweeps later: still once per endpoint
    received = receiver.received()
    print("processes restarted during the outage:", celery.restarts or "none")
    assert Counter((r.headers["webhook-id"], r.path) for r in received) == Counter(expected)
    secrets = {"/first": first_secret, "/second": second_secret}
    for request in received:
        Webhook(secrets[request.path]).verify(request.body, request.headers)
    with unit_of_work(sessions) as session:
        for endpoint in (first, second):
            deliveries = list_deliveries(
                session, factory.tenant_id, endpoint.id, limit=10, before=None
            )
            assert [(d.status, d.attempt_count) for d in deliveries] == [
                (DeliveryStatus.DELIVERED, 1)
            ] * 3


def delivery_count(
    sessions: sessionmaker[Session], tenant_id: str, endpoints: tuple[str, ...]
) -> int:
    with unit_of_work(sessions) as session:
        return sum(
            len(list_deliveries(session, tenant_id, endpoint, limit=10, before=None))
            for endpoint in endpoints
        )
