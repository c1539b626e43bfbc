"""Webhook endpoints and deliveries as the API sees them: per tenant, validated, secret once."""

import base64
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from tests.factories import Factory
from tests.webhook_fixtures import NOWHERE
from wallet.database import unit_of_work
from wallet.events.service import emit
from wallet.webhooks.dispatch import relay_outbox
from wallet.webhooks.errors import (
    InvalidDeliveryPage,
    InvalidWebhookUrl,
    UnknownEventTypes,
    UnknownWebhookDelivery,
    UnknownWebhookEndpoint,
)
from wallet.webhooks.models import DeliveryStatus
from wallet.webhooks.secrets import SecretBox
from wallet.webhooks.service import (
    WebhookEndpoint,
    create_endpoint,
    delete_endpoint,
    get_delivery,
    get_endpoint,
    list_attempts,
    list_deliveries,
    list_endpoints,
)


def new_endpoint(
    sessions: sessionmaker[Session],
    box: SecretBox,
    tenant_id: str,
    event_types: list[str],
    url: str = NOWHERE,
) -> tuple[WebhookEndpoint, str]:
    with unit_of_work(sessions) as session:
        return create_endpoint(
            session, tenant_id, url, event_types, secrets=box, allow_private_targets=True
        )


def test_an_endpoint_is_created_listed_read_and_deleted(
    factory: Factory, sessions: sessionmaker[Session], secret_box: SecretBox
) -> None:
    first, secret = new_endpoint(
        sessions, secret_box, factory.tenant_id, ["transfer.created", "deposit.*"]
    )
    second, _ = new_endpoint(sessions, secret_box, factory.tenant_id, ["*"])
    assert first.id.startswith("whe_")
    assert first.url == NOWHERE
    assert first.event_types == ("transfer.created", "deposit.*")
    assert secret.startswith("whsec_")
    Webhook(secret)  # the form the Standard Webhooks libraries take
    with unit_of_work(sessions) as session:
        assert list_endpoints(session, factory.tenant_id) == [first, second]
        assert get_endpoint(session, factory.tenant_id, first.id) == first
        delete_endpoint(session, factory.tenant_id, first.id)
    with unit_of_work(sessions) as session:
        assert list_endpoints(session, factory.tenant_id) == [second]
        with pytest.raises(UnknownWebhookEndpoint):
            get_endpoint(session, factory.tenant_id, first.id)
        with pytest.raises(UnknownWebhookEndpoint):
            delete_endpoint(session, factory.tenant_id, first.id)


def test_the_signing_secret_is_stored_only_sealed(
    factory: Factory, sessions: sessionmaker[Session], secret_box: SecretBox
) -> None:
    endpoint, secret = new_endpoint(sessions, secret_box, factory.tenant_id, ["*"])
    with unit_of_work(sessions) as session:
        stored = session.execute(
            text("SELECT * FROM webhook_endpoints WHERE id = :id"), {"id": endpoint.id}
        ).one()
    raw = base64.b64decode(secret.removeprefix("whsec_"))
    for column in stored:
        value = bytes(column) if isinstance(column, bytes | memoryview) else str(column).encode()
        assert raw not in value and secret.encode() not in value
        assert secret.removeprefix("whsec_").encode() not in value
    assert secret_box.open(bytes(stored.secret_ciphertext), endpoint.id) == raw


def test_another_tenants_endpoints_and_deliveries_are_unknown(
    factory: Factory,
    sessions: sessionmaker[Session],
    secret_box: SecretBox,
) -> None:
    other = Factory(sessions, factory.catalogue)
    endpoint, _ = new_endpoint(sessions, secret_box, factory.tenant_id, ["transfer.created"])
    with unit_of_work(sessions) as session:
        emit(session, tenant_id=factory.tenant_id, event_type="transfer.created", data={})
    relay_outbox(sessions, lambda delivery_id: None)
    with unit_of_work(sessions) as session:
        (delivery,) = list_deliveries(
            session, factory.tenant_id, endpoint.id, limit=10, before=None
        )
        assert list_endpoints(session, other.tenant_id) == []
        with pytest.raises(UnknownWebhookEndpoint):
            get_endpoint(session, other.tenant_id, endpoint.id)
        with pytest.raises(UnknownWebhookEndpoint):
            delete_endpoint(session, other.tenant_id, endpoint.id)
        with pytest.raises(UnknownWebhookEndpoint):
            list_deliveries(session, other.tenant_id, endpoint.id, limit=10, before=None)
        with pytest.raises(UnknownWebhookDelivery):
            get_delivery(session, other.tenant_id, delivery.id)
        with pytest.raises(UnknownWebhookDelivery):
            list_attempts(session, other.tenant_id, delivery.id)
        assert get_delivery(session, factory.tenant_id, delivery.id) == delivery
        assert list_attempts(session, factory.tenant_id, delivery.id) == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://app.example/hooks",
        "app.example/hooks",
        "https://",
        "https://user:pw@app.example/hooks",
        "https://app.example:port/hooks",
        "https://app.example/ho oks",
        "https://app.example/" + "x" * 2048,
        "javascript:alert(1)",
    ],
)
def test_an_endpoint_needs_an_http_url(
    factory: Factory, sessions: sessionmaker[Session], secret_box: SecretBox, url: str
) -> None:
    with pytest.raises(InvalidWebhookUrl), unit_of_work(sessions) as session:
        create_endpoint(
            session, factory.tenant_id, url, ["*"], secrets=secret_box, allow_private_targets=True
        )


def test_an_endpoint_needs_known_event_types(
    factory: Factory, sessions: sessionmaker[Session], secret_box: SecretBox
) -> None:
    with pytest.raises(UnknownEventTypes) as raised, unit_of_work(sessions) as session:
        create_endpoint(
            session,
            factory.tenant_id,
            "http://localhost:9000/hooks",
            ["transfer.created", "transfer.exploded", "loans.*"],
            secrets=secret_box,
            allow_private_targets=True,
        )
    assert raised.value.extra == {"unknown": ["loans.*", "transfer.exploded"]}
    assert raised.value.status_code == 422
    event_types: Sequence[str]
    for event_types in ([], "transfer.created"):
        with pytest.raises(UnknownEventTypes), unit_of_work(sessions) as session:
            create_endpoint(
                session,
                factory.tenant_id,
                NOWHERE,
                event_types,
                secrets=secret_box,
                allow_private_targets=True,
            )
    endpoint, _ = new_endpoint(
        sessions, secret_box, factory.tenant_id, ["deposit.seen", "deposit.seen"]
    )
    assert endpoint.event_types == ("deposit.seen",)


def test_deliveries_are_listed_newest_first_a_page_at_a_time(
    factory: Factory, sessions: sessionmaker[Session], secret_box: SecretBox
) -> None:
    endpoint, _ = new_endpoint(sessions, secret_box, factory.tenant_id, ["transfer.created"])
    events = []
    for number in range(5):
        with unit_of_work(sessions) as session:
            events.append(
                emit(
                    session,
                    tenant_id=factory.tenant_id,
                    event_type="transfer.created",
                    data={"n": number},
                )
            )
        relay_outbox(sessions, lambda delivery_id: None)
    with unit_of_work(sessions) as session:
        first = list_deliveries(session, factory.tenant_id, endpoint.id, limit=2, before=None)
        second = list_deliveries(
            session,
            factory.tenant_id,
            endpoint.id,
            limit=2,
            before=(first[-1].created_at, first[-1].id),
        )
        third = list_deliveries(
            session,
            factory.tenant_id,
            endpoint.id,
            limit=2,
            before=(second[-1].created_at, second[-1].id),
        )
        with pytest.raises(InvalidDeliveryPage):
            list_deliveries(session, factory.tenant_id, endpoint.id, limit=0, before=None)
    listed = [*first, *second, *third]
    assert [delivery.event_id for delivery in listed] == events[::-1]
    assert all(delivery.event_type == "transfer.created" for delivery in listed)
    assert all(delivery.status is DeliveryStatus.PENDING for delivery in listed)
    assert all(delivery.attempt_count == 0 for delivery in listed)


def test_deleting_an_endpoint_gives_up_its_pending_deliveries(
    factory: Factory, sessions: sessionmaker[Session], secret_box: SecretBox
) -> None:
    endpoint, _ = new_endpoint(sessions, secret_box, factory.tenant_id, ["transfer.created"])
    with unit_of_work(sessions) as session:
        emit(session, tenant_id=factory.tenant_id, event_type="transfer.created", data={})
    relay_outbox(sessions, lambda delivery_id: None)
    with unit_of_work(sessions) as session:
        (delivery,) = list_deliveries(
            session, factory.tenant_id, endpoint.id, limit=10, before=None
        )
        delete_endpoint(session, factory.tenant_id, endpoint.id)
    with unit_of_work(sessions) as session:
        given_up = get_delivery(session, factory.tenant_id, delivery.id)
    assert given_up.status is DeliveryStatus.FAILED
    assert given_up.last_error == "endpoint deleted"
    assert given_up.next_attempt_at is None
