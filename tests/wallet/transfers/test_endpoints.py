"""Transfers over HTTP: the transfer and its event, idempotent retries, and bad inputs."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tests.api_fixtures import ApiTenant
from tests.api_helpers import assert_problem, post_transfer, transfer_body
from wallet.database import unit_of_work


def transfers_from(sessions: sessionmaker[Session], wallet_id: str) -> int:
    """How many ledger transactions took money out of the wallet."""
    with unit_of_work(sessions) as session:
        return int(
            session.execute(
                text(
                    "SELECT count(*) FROM postings p JOIN accounts a ON a.id = p.account_id "
                    "WHERE a.wallet_id = :wallet AND p.amount < 0"
                ),
                {"wallet": wallet_id},
            ).scalar_one()
        )


def test_a_transfer_moves_money_and_is_read_back(
    tenant: ApiTenant, sessions: sessionmaker[Session]
) -> None:
    alice, bob = tenant.factory.wallet(), tenant.factory.wallet()
    tenant.factory.fund(alice, "USD", 10_000)
    body = transfer_body(alice, bob, "12.5", memo="tip", metadata={"post": "p1"})
    response = post_transfer(tenant.client, body)
    assert response.status_code == 201, response.text
    assert response.headers["idempotent-replayed"] == "false"
    made = response.json()
    assert made["id"].startswith("trf_")
    assert made | {"id": None, "created_at": None} == {
        "id": None,
        "source_wallet_id": alice,
        "destination_wallet_id": bob,
        "asset": "USD",
        "amount": "12.50",
        "memo": "tip",
        "metadata": {"post": "p1"},
        "created_at": None,
    }
    assert tenant.client.get(f"/v1/transfers/{made['id']}").json() == made
    with unit_of_work(sessions) as session:
        event = session.execute(
            text("SELECT tenant_id, event_type, payload FROM outbox WHERE payload->>'id' = :id"),
            {"id": made["id"]},
        ).one()
    assert (event.tenant_id, event.event_type, event.payload) == (
        tenant.tenant_id,
        "transfer.created",
        made,
    )


def test_a_retry_with_the_same_key_replays_the_first_answer(
    tenant: ApiTenant, sessions: sessionmaker[Session]
) -> None:
    alice, bob = tenant.factory.wallet(), tenant.factory.wallet()
    tenant.factory.fund(alice, "USD", 10_000)
    body = transfer_body(alice, bob, "1.00")
    first = post_transfer(tenant.client, body, key="retry-1")
    again = post_transfer(tenant.client, body, key="retry-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert transfers_from(sessions, alice) == 1


def test_a_key_reused_for_another_request_is_a_conflict(tenant: ApiTenant) -> None:
    alice, bob = tenant.factory.wallet(), tenant.factory.wallet()
    tenant.factory.fund(alice, "USD", 10_000)
    assert post_transfer(tenant.client, transfer_body(alice, bob, "1.00"), "k").status_code == 201
    reused = post_transfer(tenant.client, transfer_body(alice, bob, "2.00"), "k")
    assert_problem(reused, 409, "idempotency-key-reused")
    on_wallets = tenant.client.post(
        "/v1/wallets", json={"owner_ref": "x"}, headers={"Idempotency-Key": "k"}
    )
    assert_problem(on_wallets, 409, "idempotency-key-reused")


def test_keys_belong_to_one_tenant(tenant: ApiTenant, other_tenant: ApiTenant) -> None:
    for api_tenant in (tenant, other_tenant):
        alice, bob = api_tenant.factory.wallet(), api_tenant.factory.wallet()
        api_tenant.factory.fund(alice, "USD", 100)
        made = post_transfer(api_tenant.client, transfer_body(alice, bob, "1.00"), "shared")
        assert made.status_code == 201
        assert made.headers["idempotent-replayed"] == "false"


def test_a_failure_is_replayed_too(tenant: ApiTenant) -> None:
    alice, bob = tenant.factory.wallet(), tenant.factory.wallet()
    body = transfer_body(alice, bob, "5.00")
    first = post_transfer(tenant.client, body, "poor")
    assert_problem(first, 422, "insufficient-funds")
    tenant.factory.fund(alice, "USD", 10_000)
    again = post_transfer(tenant.client, body, "poor")
    assert_problem(again, 422, "insufficient-funds")
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert post_transfer(tenant.client, body, "rich").status_code == 201


def test_concurrent_duplicates_make_one_transfer(
    tenant: ApiTenant, sessions: sessionmaker[Session]
) -> None:
    alice, bob = tenant.factory.wallet(), tenant.factory.wallet()
    tenant.factory.fund(alice, "USD", 10_000)
    body = transfer_body(alice, bob, "3.00")

    def send(_: int) -> httpx.Response:
        return tenant.client.post("/v1/transfers", json=body, headers={"Idempotency-Key": "k"})

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(send, range(12)))
    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["id"] for response in responses}) == 1
    assert sum(r.headers["idempotent-replayed"] == "false" for r in responses) == 1
    assert transfers_from(sessions, alice) == 1


def test_the_idempotency_key_is_required(tenant: ApiTenant) -> None:
    alice, bob = tenant.factory.wallet(), tenant.factory.wallet()
    response = tenant.client.post("/v1/transfers", json=transfer_body(alice, bob, "1.00"))
    assert_problem(response, 400, "idempotency-key-required")


@pytest.mark.parametrize(
    ("amount", "problem"),
    [
        ("1.001", "too-many-decimals"),
        ("-1.00", "amount-not-positive"),
        ("0", "amount-not-positive"),
        ("0.00", "amount-not-positive"),
        ("1e3", "invalid-amount"),
        ("12,50", "invalid-amount"),
        (" 1", "invalid-amount"),
        ("1" * 80, "amount-too-large"),
    ],
)
def test_a_bad_amount_is_its_own_problem(tenant: ApiTenant, amount: str, problem: str) -> None:
    alice, bob = tenant.factory.wallet(), tenant.factory.wallet()
    tenant.factory.fund(alice, "USD", 10_000)
    assert_problem(post_transfer(tenant.client, transfer_body(alice, bob, amount)), 422, problem)


def test_other_bad_transfers_are_their_own_problems(tenant: ApiTenant) -> None:
    alice, bob, frozen = (tenant.factory.wallet() for _ in range(3))
    tenant.factory.fund(alice, "USD", 10_000)
    tenant.client.post(f"/v1/wallets/{frozen}/freeze")
    client = tenant.client
    unknown_asset = transfer_body(alice, bob, "1.00", asset="XYZ")
    assert_problem(post_transfer(client, unknown_asset), 422, "unknown-asset")
    same = transfer_body(alice, alice, "1.00")
    assert_problem(post_transfer(client, same), 422, "same-source-and-destination")
    to_frozen = transfer_body(alice, frozen, "1.00")
    assert_problem(post_transfer(client, to_frozen), 409, "wallet-not-active")
    too_much = transfer_body(alice, bob, "100.01")
    assert_problem(post_transfer(client, too_much), 422, "insufficient-funds")
    nowhere = transfer_body(alice, "wal_" + "a" * 26, "1.00")
    assert_problem(post_transfer(client, nowhere), 404, "unknown-wallet")
    malformed = transfer_body(alice, "wal_nowhere", "1.00")
    assert_problem(post_transfer(client, malformed), 422, "invalid-request")
    as_number = post_transfer(client, transfer_body(alice, bob, 12.5))  # type: ignore[arg-type]
    problem = assert_problem(as_number, 422, "invalid-request")
    assert problem["errors"][0]["field"] == "body.amount"
    assert_problem(client.get("/v1/transfers/trf_999999999"), 404, "unknown-transfer")
