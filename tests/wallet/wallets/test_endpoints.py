"""Wallets over HTTP: create, get, list by owner with pages, freeze, balances."""

from tests.api_fixtures import ApiTenant
from tests.api_helpers import assert_problem, idempotency_key, post_transfer, transfer_body


def test_a_wallet_is_created_and_read_back(tenant: ApiTenant) -> None:
    created = tenant.client.post(
        "/v1/wallets", json={"owner_ref": "user-1", "metadata": {"tier": "gold"}}
    )
    assert created.status_code == 201, created.text
    wallet = created.json()
    assert wallet["id"].startswith("wal_")
    assert wallet["owner_ref"] == "user-1"
    assert wallet["status"] == "active"
    assert wallet["metadata"] == {"tier": "gold"}
    assert wallet["created_at"].endswith("Z")
    assert tenant.client.get(f"/v1/wallets/{wallet['id']}").json() == wallet


def test_creating_a_wallet_with_an_idempotency_key_creates_it_once(tenant: ApiTenant) -> None:
    key = idempotency_key()
    first = tenant.client.post("/v1/wallets", json={"owner_ref": "once"}, headers=key)
    again = tenant.client.post("/v1/wallets", json={"owner_ref": "once"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    listed = tenant.client.get("/v1/wallets", params={"owner_ref": "once"}).json()
    assert [wallet["id"] for wallet in listed["data"]] == [first.json()["id"]]


def test_wallets_are_listed_by_owner_newest_first_a_page_at_a_time(tenant: ApiTenant) -> None:
    made = [
        tenant.client.post("/v1/wallets", json={"owner_ref": "owner-a"}).json()["id"]
        for _ in range(5)
    ]
    tenant.client.post("/v1/wallets", json={"owner_ref": "owner-b"})
    seen: list[str] = []
    params: dict[str, str | int] = {"owner_ref": "owner-a", "limit": 2}
    while True:
        page = tenant.client.get("/v1/wallets", params=params).json()
        assert len(page["data"]) <= 2
        seen += [wallet["id"] for wallet in page["data"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == made[::-1]
    everything = tenant.client.get("/v1/wallets", params={"limit": 100}).json()
    assert len(everything["data"]) == 6


def test_a_wallet_is_frozen_and_unfrozen(tenant: ApiTenant) -> None:
    wallet = tenant.factory.wallet()
    assert tenant.client.post(f"/v1/wallets/{wallet}/freeze").json()["status"] == "frozen"
    assert tenant.client.get(f"/v1/wallets/{wallet}").json()["status"] == "frozen"
    assert tenant.client.post(f"/v1/wallets/{wallet}/unfreeze").json()["status"] == "active"


def test_balances_list_every_asset_as_decimal_strings(tenant: ApiTenant) -> None:
    alice, bob = tenant.factory.wallet(), tenant.factory.wallet()
    tenant.factory.fund(alice, "USD", 10_000)
    tenant.factory.fund(alice, "ETH", 1_500_000_000_000_000_000)
    assert post_transfer(tenant.client, transfer_body(alice, bob, "12.34")).status_code == 201
    document = tenant.client.get(f"/v1/wallets/{alice}/balances").json()
    assert document["wallet_id"] == alice
    balances = {row["asset"]: row for row in document["balances"]}
    assert balances["USD"] == {
        "asset": "USD",
        "available": "87.66",
        "pending_in": "0.00",
        "pending_out": "0.00",
        "posted": "87.66",
    }
    assert balances["ETH"]["available"] == "1.500000000000000000"
    assert balances["USDC"]["posted"] == "0.000000"
    bob_usd = next(
        row
        for row in tenant.client.get(f"/v1/wallets/{bob}/balances").json()["balances"]
        if row["asset"] == "USD"
    )
    assert bob_usd["available"] == "12.34"


def test_wallet_inputs_are_validated_field_by_field(tenant: ApiTenant) -> None:
    response = tenant.client.post(
        "/v1/wallets", json={"owner_ref": "", "metadata": {"n": 1, "k\u0000": "v"}}
    )
    problem = assert_problem(response, 422, "invalid-request")
    fields = {error["field"] for error in problem["errors"]}
    assert {"body.owner_ref", "body.metadata.n"} <= fields
    assert any(field.startswith("body.metadata.k") for field in fields - {"body.metadata.n"})
    assert_problem(tenant.client.get("/v1/wallets/not an id"), 422, "invalid-request")
    assert_problem(tenant.client.get("/v1/wallets/wal_" + "a" * 26), 404, "unknown-wallet")
    assert_problem(tenant.client.get("/v1/wallets/wal_unknown"), 422, "invalid-request")
