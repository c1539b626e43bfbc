"""The embedded profile's broker: kombu's SQL transport on the service's own PostgreSQL."""

from collections.abc import Callable

from sqlalchemy import text
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
