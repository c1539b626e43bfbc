"""The OpenAPI document as clients read it, and the requests Schemathesis found the server and
the schema disagreeing on, kept as regression cases."""

import re
from typing import Any

import pytest

from tests.api_fixtures import Api, ApiTenant
from tests.api_helpers import assert_problem
from wallet.assets.service import Catalogue
from wallet.events.service import subscriptions

UNKNOWN_WALLET = "wal_" + "a" * 26


@pytest.fixture(scope="module")
def document(api: Api) -> dict[str, Any]:
    with api.client() as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    found: dict[str, Any] = response.json()
    return found


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [operation for path in document["paths"].values() for operation in path.values()]


def test_every_operation_has_a_clean_unique_id(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for operation in operations(document)]
    assert all(re.fullmatch("[a-z_]+", name) for name in ids), ids
    assert len(ids) == len(set(ids))
    assert {"wallets_create", "wallets_get", "wallets_list", "transfers_create"} <= set(ids)
    assert {"transfers_get", "webhook_endpoints_list", "deposit_addresses_create"} <= set(ids)


def test_links_tie_each_create_to_operations_that_exist(document: dict[str, Any]) -> None:
    ids = {operation["operationId"] for operation in operations(document)}
    links = {
        operation["operationId"]: {
            link["operationId"]
            for response in operation["responses"].values()
            for link in response.get("links", {}).values()
        }
        for operation in operations(document)
    }
    assert all(targets <= ids for targets in links.values()), links
    assert {"wallets_get", "wallets_list", "transfers_create"} <= links["wallets_create"]
    assert "transfers_get" in links["transfers_create"]
    assert "deposit_addresses_list" in links["deposit_addresses_create"]
    assert "webhook_endpoints_get" in links["webhook_endpoints_create"]


def test_the_catalogue_and_the_event_registry_are_enums(
    document: dict[str, Any], catalogue: Catalogue
) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["DepositAddressCreate"]["properties"]["chain"]["enum"] == list(catalogue.chains)
    assert schemas["TransferCreate"]["properties"]["asset"]["enum"] == list(catalogue.assets)
    # The bank's rails move only the catalogue's fiat currencies.
    assert schemas["PayinCreate"]["properties"]["asset"]["enum"] == ["USD", "EUR"]
    (fee_asset,) = [
        parameter
        for parameter in document["paths"]["/v1/fiat/fees"]["get"]["parameters"]
        if parameter["name"] == "asset"
    ]
    assert fee_asset["schema"]["enum"] == ["USD", "EUR"]
    event_types = schemas["WebhookEndpointCreate"]["properties"]["event_types"]["items"]
    assert event_types["enum"] == list(subscriptions())


def test_a_query_parameter_given_twice_is_refused(tenant: ApiTenant) -> None:
    response = tenant.client.get("/v1/wallets", params=[("owner_ref", "a"), ("owner_ref", "b")])
    problem = assert_problem(response, 422, "invalid-request")
    assert problem["errors"] == [{"field": "query.owner_ref", "message": "given more than once"}]


def test_ids_out_of_their_pattern_are_refused_and_unknown_ones_are_not_found(
    tenant: ApiTenant,
) -> None:
    assert_problem(tenant.client.get("/v1/wallets/a_0"), 422, "invalid-request")
    assert_problem(tenant.client.get(f"/v1/wallets/{UNKNOWN_WALLET}"), 404, "unknown-wallet")
    assert_problem(tenant.client.get("/v1/transfers/a_0"), 422, "invalid-request")
    assert_problem(tenant.client.get("/v1/transfers/trf_0"), 404, "unknown-transfer")


def test_any_cursor_of_the_pattern_is_a_position(tenant: ApiTenant) -> None:
    for cursor in (f"0-{UNKNOWN_WALLET}", f"99999999999999999-{UNKNOWN_WALLET}"):
        page = tenant.client.get("/v1/wallets", params={"cursor": cursor})
        assert page.status_code == 200, page.text
    endpoint = tenant.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://app.example/hooks", "event_types": ["*"]},
    ).json()
    foreign_delivery = "0-whd_" + "2" * 26
    deliveries = tenant.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", params={"cursor": foreign_delivery}
    )
    assert deliveries.json() == {"data": [], "next_cursor": None}
    garbage = tenant.client.get("/v1/wallets", params={"cursor": "WyJ4IiwgIjEiXQ"})
    assert_problem(garbage, 422, "invalid-request")


def test_timestamps_are_rfc_3339_only(tenant: ApiTenant) -> None:
    wallet = tenant.factory.wallet()
    history = f"/v1/wallets/{wallet}/transactions"
    for refused in ("0.5", "1700000000", "2024-01-01 00:00:00Z", "0000-01-01T00:00:00Z"):
        response = tenant.client.get(history, params={"created_before": refused})
        assert_problem(response, 422, "invalid-request")
    accepted = tenant.client.get(history, params={"created_before": "2024-01-01t00:00:00.5+01:00"})
    assert accepted.status_code == 200, accepted.text


def test_every_subscription_the_schema_lists_is_accepted(tenant: ApiTenant) -> None:
    body = {"url": "https://app.example/hooks", "event_types": list(subscriptions())}
    created = tenant.client.post("/v1/webhook-endpoints", json=body)
    assert created.status_code == 201, created.text
    unknown = {"url": "https://app.example/hooks", "event_types": ["wallet.created"]}
    assert_problem(
        tenant.client.post("/v1/webhook-endpoints", json=unknown), 422, "unknown-event-types"
    )


def test_every_chain_the_schema_lists_is_accepted(tenant: ApiTenant, catalogue: Catalogue) -> None:
    wallet = tenant.factory.wallet()
    for chain in catalogue.chains:
        issued = tenant.client.post(
            f"/v1/wallets/{wallet}/deposit-addresses", json={"chain": chain}
        )
        assert issued.status_code == 201, issued.text
    unknown = tenant.client.post(f"/v1/wallets/{wallet}/deposit-addresses", json={"chain": "x"})
    assert_problem(unknown, 422, "unknown-chain")


def test_metadata_takes_any_text_but_nul(tenant: ApiTenant) -> None:
    controls = {"\x01\x1f": "\x7f\u2028", "ключ": "значение 🙂"}
    created = tenant.client.post("/v1/wallets", json={"owner_ref": "u\x01", "metadata": controls})
    assert created.status_code == 201, created.text
    assert created.json()["metadata"] == controls
    for metadata in ({"a\x00": "b"}, {"a": "b\x00"}):
        refused = tenant.client.post("/v1/wallets", json={"owner_ref": "u", "metadata": metadata})
        assert_problem(refused, 422, "invalid-request")
