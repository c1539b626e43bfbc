"""Webhook endpoints over HTTP: add, list, get, delete, and the deliveries made to them."""

from sqlalchemy.orm import Session, sessionmaker

from tests.api_fixtures import ApiTenant
from tests.api_helpers import assert_problem, post_transfer, transfer_body
from wallet.webhooks.dispatch import relay_outbox


def test_an_endpoint_is_added_listed_and_deleted(tenant: ApiTenant) -> None:
    created = tenant.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://app.example/hooks", "event_types": ["transfer.created"]},
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["id"].startswith("whe_")
    assert endpoint["secret"].startswith("whsec_")
    shown = {key: value for key, value in endpoint.items() if key != "secret"}
    assert tenant.client.get(f"/v1/webhook-endpoints/{endpoint['id']}").json() == shown
    assert tenant.client.get("/v1/webhook-endpoints").json() == {"data": [shown]}
    deleted = tenant.client.delete(f"/v1/webhook-endpoints/{endpoint['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    gone = tenant.client.get(f"/v1/webhook-endpoints/{endpoint['id']}")
    assert_problem(gone, 404, "unknown-webhook-endpoint")


def test_bad_endpoints_are_refused(tenant: ApiTenant) -> None:
    client = tenant.client
    bad_url = {"url": "ftp://app.example/hooks", "event_types": ["*"]}
    assert_problem(client.post("/v1/webhook-endpoints", json=bad_url), 422, "invalid-webhook-url")
    bad_types = {"url": "https://app.example/hooks", "event_types": ["transfer.lost"]}
    problem = assert_problem(
        client.post("/v1/webhook-endpoints", json=bad_types), 422, "unknown-event-types"
    )
    assert problem["unknown"] == ["transfer.lost"]
    no_types = {"url": "https://app.example/hooks", "event_types": []}
    assert_problem(client.post("/v1/webhook-endpoints", json=no_types), 422, "invalid-request")


def test_deliveries_are_listed_newest_first_a_page_at_a_time(
    tenant: ApiTenant, sessions: sessionmaker[Session]
) -> None:
    endpoint = tenant.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://app.example/hooks", "event_types": ["transfer.*"]},
    ).json()
    alice, bob = tenant.factory.wallet(), tenant.factory.wallet()
    tenant.factory.fund(alice, "USD", 10_000)
    made = [
        post_transfer(tenant.client, transfer_body(alice, bob, f"{n}.00")).json()["id"]
        for n in range(1, 4)
    ]
    relay_outbox(sessions, lambda delivery_id: None)

    seen = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = tenant.client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", params=params
        ).json()
        seen += page["data"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len(seen) == len(made)
    assert len({delivery["id"] for delivery in seen}) == len(made)
    assert all(delivery["id"].startswith("whd_") for delivery in seen)
    assert {delivery["event_type"] for delivery in seen} == {"transfer.created"}
    assert {delivery["status"] for delivery in seen} == {"pending"}
    assert [d["created_at"] for d in seen] == sorted((d["created_at"] for d in seen), reverse=True)
