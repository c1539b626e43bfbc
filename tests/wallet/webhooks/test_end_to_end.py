"""The app's whole path: a real uvicorn API, a real Celery worker and beat on Redis, and a real
HTTP receiver for the `transfer.created` webhook, whose signature is checked."""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from tests.api_fixtures import ALL_SCOPES, bearer_client, issue_key, running_api
from tests.factories import Factory
from tests.webhook_fixtures import (
    TEST_SECRETS_KEY,
    CeleryProcesses,
    WebhookReceiver,
    wait_until,
)


@pytest.fixture
def api(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[str]:
    """The API sealing webhook secrets with the key the worker opens them with."""
    with running_api(
        database_url, tmp_path, {"WALLET_WEBHOOK_SECRETS_KEY": TEST_SECRETS_KEY}
    ) as url:
        yield url


@pytest.fixture
def celery(
    engine: Engine, database_url: str, redis_url: str, tmp_path: Path
) -> Iterator[CeleryProcesses]:
    processes = CeleryProcesses(database_url, redis_url, tmp_path)
    processes.start()
    yield processes
    processes.stop()


def test_a_transfer_over_http_reaches_the_app_as_a_signed_webhook(
    api: str,
    celery: CeleryProcesses,
    receiver: WebhookReceiver,
    factory: Factory,
    sessions: sessionmaker[Session],
) -> None:
    client = bearer_client(api, issue_key(sessions, factory.tenant_id, *ALL_SCOPES))
    with client:
        endpoint = client.post(
            "/v1/webhook-endpoints",
            json={"url": receiver.url("app"), "event_types": ["transfer.created"]},
        )
        assert endpoint.status_code == 201, endpoint.text
        secret = endpoint.json()["secret"]
        alice, bob = (
            client.post("/v1/wallets", json={"owner_ref": name}).json()["id"]
            for name in ("alice", "bob")
        )
        factory.fund(alice, "USD", 10_000)

        moved = client.post(
            "/v1/transfers",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={
                "source_wallet_id": alice,
                "destination_wallet_id": bob,
                "asset": "USD",
                "amount": "12.50",
                "memo": "lunch",
            },
        )
        assert moved.status_code == 201, moved.text
        transfer = moved.json()

        balances = client.get(f"/v1/wallets/{bob}/balances").json()["balances"]
        assert {b["asset"]: b["available"] for b in balances}["USD"] == "12.50"
        history = client.get(f"/v1/wallets/{alice}/transactions").json()["data"]
        assert [entry["amount"] for entry in history[:2]] == ["-12.50", "100.00"]

    wait_until(lambda: bool(receiver.received("app")), timeout=30)
    (delivered,) = receiver.received("app")
    event = Webhook(secret).verify(delivered.body, delivered.headers)
    assert event["type"] == "transfer.created"
    assert event["data"] == transfer
    assert delivered.headers["webhook-id"] == json.loads(delivered.body)["id"]
    assert not celery.restarts
    httpx.get(api + "/healthz").raise_for_status()
