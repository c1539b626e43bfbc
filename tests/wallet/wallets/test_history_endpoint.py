"""A wallet's ledger history: newest first, signed amounts, balances after, pages, filters."""

from typing import Any

from tests.api_fixtures import ApiTenant
from tests.api_helpers import assert_problem, post_transfer, transfer_body


def all_pages(tenant: ApiTenant, wallet: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = tenant.client.get(f"/v1/wallets/{wallet}/transactions", params=params)
        assert page.status_code == 200, page.text
        items += page.json()["data"]
        if page.json()["next_cursor"] is None:
            return items
        params["cursor"] = page.json()["next_cursor"]


def test_history_lists_each_movement_newest_first(tenant: ApiTenant) -> None:
    alice, bob = tenant.factory.wallet(), tenant.factory.wallet()
    tenant.factory.fund(alice, "USD", 10_000)
    memo = {"memo": "lunch", "metadata": {"order": "42"}}
    first = post_transfer(tenant.client, transfer_body(alice, bob, "10.00", **memo)).json()
    post_transfer(tenant.client, transfer_body(bob, alice, "2.50"))

    items = all_pages(tenant, alice)
    assert [(item["reason"], item["amount"], item["balance_after"]) for item in items] == [
        ("transfer", "2.50", "92.50"),
        ("transfer", "-10.00", "90.00"),
        ("adjustment", "100.00", "100.00"),
    ]
    lunch = items[1]
    assert lunch["transfer_id"] == first["id"]
    assert lunch["transaction_id"] == "ltx_" + first["id"].removeprefix("trf_")
    assert (lunch["memo"], lunch["metadata"]) == ("lunch", {"order": "42"})
    assert items[2]["transfer_id"] is None and items[2]["memo"] is None
    assert all(item["asset"] == "USD" for item in items)


def test_history_pages_cover_everything_once(tenant: ApiTenant) -> None:
    alice, bob = tenant.factory.wallet(), tenant.factory.wallet()
    tenant.factory.fund(alice, "USD", 10_000)
    for cents in range(1, 8):
        post_transfer(tenant.client, transfer_body(alice, bob, f"0.0{cents}"))
    whole = all_pages(tenant, alice, limit=100)
    paged = all_pages(tenant, alice, limit=3)
    assert len(whole) == 8
    assert paged == whole


def test_history_is_filtered_by_asset_and_time(tenant: ApiTenant) -> None:
    alice, bob = tenant.factory.wallet(), tenant.factory.wallet()
    tenant.factory.fund(alice, "USD", 10_000)
    tenant.factory.fund(alice, "EUR", 5_000)
    post_transfer(tenant.client, transfer_body(alice, bob, "1.00", asset="EUR"))
    post_transfer(tenant.client, transfer_body(alice, bob, "2.00"))
    euros = all_pages(tenant, alice, asset="EUR")
    assert [item["amount"] for item in euros] == ["-1.00", "50.00"]
    everything = all_pages(tenant, alice)
    middle = everything[1]["created_at"]
    newer = all_pages(tenant, alice, created_after=middle)
    older = all_pages(tenant, alice, created_before=middle)
    assert newer == everything[:1]
    assert older == everything[2:]
    assert_problem(
        tenant.client.get(f"/v1/wallets/{alice}/transactions", params={"asset": "XYZ"}),
        422,
        "unknown-asset",
    )
    naive = tenant.client.get(
        f"/v1/wallets/{alice}/transactions", params={"created_after": "2024-01-01T00:00:00"}
    )
    assert_problem(naive, 422, "invalid-request")


def test_a_cursor_out_of_its_pattern_is_refused_and_any_in_it_is_a_position(
    tenant: ApiTenant,
) -> None:
    wallet = tenant.factory.wallet()
    for cursor in ["garbage", "1-wal_" + "a" * 26, "1-1", "123456789012345678-1.1"]:
        response = tenant.client.get(
            f"/v1/wallets/{wallet}/transactions", params={"cursor": cursor}
        )
        problem = assert_problem(response, 422, "invalid-request")
        assert problem["errors"][0]["field"] == "query.cursor"
    for cursor in ["0-0.0", "99999999999999999-999999999999999999.999999999999999999"]:
        response = tenant.client.get(
            f"/v1/wallets/{wallet}/transactions", params={"cursor": cursor}
        )
        assert response.status_code == 200, response.text
    over = tenant.client.get(f"/v1/wallets/{wallet}/transactions", params={"limit": 101})
    assert assert_problem(over, 422, "invalid-request")["errors"][0]["field"] == "query.limit"
