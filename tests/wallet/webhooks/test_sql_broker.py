"""The embedded profile's broker: kombu's SQL transport on the service's own PostgreSQL."""

import os
import subprocess
import sys
import time
from collections.abc import Callable

import psycopg
from sqlalchemy import make_url, text
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from tests.factories import Factory
from tests.webhook_fixtures import CeleryProcesses, WebhookReceiver, add_endpoint, wait_until
from wallet.database import unit_of_work
from wallet.events.service import emit
from wallet.webhooks.secrets import SecretBox


def test_without_a_broker_url_events_go_through_the_database(
    start_celery: Callable[[str | None], CeleryProcesses],
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
    receiver: WebhookReceiver,
) -> None:
    celery = start_celery(None)
    assert "transport:   postgresql://" in celery.log("worker")
    _, secret = add_endpoint(sessions, secret_box, factory.tenant_id, receiver.url("app"), ["*"])
    with unit_of_work(sessions) as session:
        event_id = emit(
            session, tenant_id=factory.tenant_id, event_type="transfer.created", data={}
        )
    wait_until(lambda: len(receiver.received("app")) == 1)
    (request,) = receiver.received("app")
    assert Webhook(secret).verify(request.body, request.headers)["id"] == event_id

    def consumed_messages() -> int:
        with unit_of_work(sessions) as session:
            return int(
                session.execute(
                    text("SELECT count(*) FROM kombu_message WHERE visible = false")
                ).scalar_one()
            )

    # The transport keeps every message it handed out; the sweep deletes them.
    wait_until(lambda: consumed_messages() < 5, timeout=10)


PUBLISHER = """
import sys, time
from kombu import Connection
url, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
with Connection(url, transport="wallet.sql_broker:Transport") as connection:
    connection.SimpleQueue("together").put({"from": sys.argv[3]})
"""


def test_processes_starting_together_on_a_new_database_share_its_tables_and_queues(
    server_url: str,
) -> None:
    # Each process would create kombu's tables and the queue at the same moment.
    name = f"wallet_test_{os.getpid()}_broker"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        start = time.time() + 3
        publishers = [
            subprocess.Popen([sys.executable, "-c", PUBLISHER, url, str(start), str(n)])
            for n in range(6)
        ]
        assert [publisher.wait(timeout=60) for publisher in publishers] == [0] * 6
        with psycopg.connect(url) as connection:
            counts = connection.execute(
                "SELECT (SELECT count(*) FROM kombu_queue), (SELECT count(*) FROM kombu_message)"
            ).fetchone()
        assert counts == (1, 6)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
