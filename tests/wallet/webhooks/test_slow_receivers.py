"""Slow receivers cannot stall the others: a real worker and beat on Redis, real receivers.

One tenant's twenty endpoints answer one byte every 0.4 s (before, each attempt held a
worker thread for as long as the receiver pleased); another tenant's healthy endpoint
still gets its event within seconds, while the slow ones are still being attempted.
"""

import socket
import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from tests.webhook_fixtures import (
    CeleryProcesses,
    WebhookReceiver,
    add_endpoint,
    emit_committed,
    raw_receiver,
    trickle,
    wait_until,
)
from wallet.webhooks.secrets import SecretBox

SLOW_ENDPOINTS = 20


class Connections:
    """Wraps a receiver's answer; counts the connections it is answering now and in all."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self._answer = answer
        self._lock = threading.Lock()
        self.open = 0
        self.total = 0

    def __call__(self, connection: socket.socket) -> None:
        with self._lock:
            self.open += 1
            self.total += 1
        try:
            self._answer(connection)
        finally:
            with self._lock:
                self.open -= 1


def test_a_healthy_endpoint_gets_its_event_while_another_tenants_endpoints_trickle(
    start_celery: Callable[..., CeleryProcesses],
    redis_url: str,
    factory: Factory,
    *,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    receiver: WebhookReceiver,
) -> None:
    limits = {"WALLET_WEBHOOK_TIMEOUT": "2", "WALLET_WEBHOOK_TENANT_CONCURRENCY": "2"}
    celery = start_celery(redis_url, limits)
    healthy_tenant = Factory(sessions, factory.catalogue)
    add_endpoint(sessions, secret_box, healthy_tenant.tenant_id, receiver.url("healthy"), ["*"])
    slow = Connections(trickle)
    with raw_receiver(slow) as url:
        for n in range(SLOW_ENDPOINTS):
            add_endpoint(sessions, secret_box, factory.tenant_id, f"{url}/slow-{n}", ["*"])
        for _ in range(3):
            emit_committed(sessions, factory.tenant_id)
        wait_until(lambda: slow.open >= 2, timeout=30)

        sent = time.monotonic()
        emit_committed(sessions, healthy_tenant.tenant_id)
        wait_until(lambda: receiver.received("healthy") != [], timeout=60, interval=0.01)
        waited = time.monotonic() - sent
        still_trickling = slow.open
    print(f"healthy endpoint received its event after {waited:.2f} s")
    assert waited < 5, f"the healthy endpoint waited {waited:.1f} s"
    assert still_trickling >= 1
    # Attempts run on their own queue, which `wallet worker` consumes with the relay's.
    queue = celery.env["WALLET_CELERY_QUEUE"]
    assert f".> {queue}.webhooks " in celery.log("worker")
