"""Tenant isolation: every endpoint answers another tenant's ids as unknown (404, never 403)."""

import pytest

from tests.api_fixtures import ApiTenant
from tests.api_helpers import assert_problem, post_transfer, transfer_body


@pytest.fixture
def theirs(other_tenant: ApiTenant) -> dict[str, str]:
    """Ids of the other tenant: two wallets, a transfer between them, a webhook endpoint."""
    alice, bob = other_tenant.factory.wallet("their-user"), other_tenant.factory.wallet()
    other_tenant.factory.fund(alice, "USD", 10_000)
    made = post_transfer(other_tenant.client, transfer_body(alice, bob, "1.00"))
    endpoint = other_tenant.client.post(
        "/v1/webhook-endpoints",
        json={"url": "https://their.example/hooks", "event_types": ["*"]},
    )
    return {
        "wallet": alice,
        "other_wallet": bob,
        "transfer": made.json()["id"],
        "endpoint": endpoint.json()["id"],
    }


@pytest.mark.parametrize(
    ("method", "path", "problem"),
    [
        ("GET", "/v1/wallets/{wallet}", "unknown-wallet"),
        ("POST", "/v1/wallets/{wallet}/freeze", "unknown-wallet"),
        ("POST", "/v1/wallets/{wallet}/unfreeze", "unknown-wallet"),
        ("GET", "/v1/wallets/{wallet}/balances", "unknown-wallet"),
        ("GET", "/v1/wallets/{wallet}/transactions", "unknown-wallet"),
        ("GET", "/v1/transfers/{transfer}", "unknown-transfer"),
        ("GET", "/v1/webhook-endpoints/{endpoint}", "unknown-webhook-endpoint"),
        ("DELETE", "/v1/webhook-endpoints/{endpoint}", "unknown-webhook-endpoint"),
        ("GET", "/v1/webhook-endpoints/{endpoint}/deliveries", "unknown-webhook-endpoint"),
    ],
)
def test_another_tenants_resource_is_unknown(
    tenant: ApiTenant, theirs: dict[str, str], method: str, path: str, problem: str
) -> None:
    response = tenant.client.request(method, path.format(**theirs))
    assert_problem(response, 404, problem)


def test_money_never_moves_to_or_from_another_tenants_wallet(
    tenant: ApiTenant, other_tenant: ApiTenant, theirs: dict[str, str]
) -> None:
    mine = tenant.factory.wallet()
    tenant.factory.fund(mine, "USD", 10_000)
    for source, destination in [(mine, theirs["wallet"]), (theirs["wallet"], mine)]:
        response = post_transfer(tenant.client, transfer_body(source, destination, "1.00"))
        assert_problem(response, 404, "unknown-wallet")
    their_balances = other_tenant.client.get(f"/v1/wallets/{theirs['wallet']}/balances").json()
    usd = next(row for row in their_balances["balances"] if row["asset"] == "USD")
    assert usd["posted"] == "99.00"


def test_lists_show_only_the_tenants_own(tenant: ApiTenant, theirs: dict[str, str]) -> None:
    assert tenant.client.get("/v1/wallets", params={"owner_ref": "their-user"}).json() == {
        "data": [],
        "next_cursor": None,
    }
    assert tenant.client.get("/v1/wallets").json()["data"] == []
    assert tenant.client.get("/v1/webhook-endpoints").json() == {"data": []}
