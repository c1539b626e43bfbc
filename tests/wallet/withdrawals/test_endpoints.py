"""Requesting withdrawals over HTTP: holds, fees, validation, internal transfers, cancel,
approvals, lists, and many concurrent requests on one wallet."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from tests.api_fixtures import ApiTenant
from tests.api_helpers import assert_problem
from tests.wallet.deposits.conftest import events_of
from tests.wallet.withdrawals.conftest import (
    BLOCKED,
    ETH,
    USDC,
    SendingChain,
    crypto,
    post_withdrawal,
    withdrawal_body,
    withdrawal_rows,
)
from wallet.apikeys.models import Scope
from wallet.database import unit_of_work
from wallet.ledger.repository import Balance, balance, user_account
from wallet.withdrawals.errors import NoFeeRate
from wallet.withdrawals.service import WithdrawalRules

OUTSIDE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def wallet_balance(tenant: ApiTenant, wallet_id: str, asset: str) -> Balance:
    with unit_of_work(tenant.factory.sessions) as session:
        return balance(session, user_account(session, wallet_id, asset))


def units(text: str, decimals: int) -> int:
    return int(Decimal(text) * 10**decimals)


def test_a_withdrawal_holds_amount_and_quoted_fee_and_is_queued(customer: ApiTenant) -> None:
    wallet = customer.factory.wallet()
    customer.factory.fund(wallet, "ETH", ETH)

    response = post_withdrawal(
        customer.client, withdrawal_body(wallet, "ETH", "0.25", OUTSIDE), "k1"
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"].startswith("wdr_")
    assert created["status"] == "queued"
    assert created["internal"] is False
    assert created["destination"] == crypto(OUTSIDE)
    fee = units(created["fee"], 18)
    assert fee > 10**14  # the service fee plus a network fee at the quote's fee cap
    held = wallet_balance(customer, wallet, "ETH")
    assert (held.posted, held.pending_out) == (ETH, ETH // 4 + fee)
    assert events_of(customer.factory.sessions, created["id"]) == [
        ("withdrawal.requested", "queued")
    ]
    replay = post_withdrawal(customer.client, withdrawal_body(wallet, "ETH", "0.25", OUTSIDE), "k1")
    assert replay.json() == created
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert customer.client.get(f"/v1/withdrawals/{created['id']}").json() == created


def test_a_usdc_fee_is_the_network_fee_at_the_configured_rate_plus_the_service_fee(
    customer: ApiTenant,
) -> None:
    wallet = customer.factory.wallet()
    customer.factory.fund(wallet, "USDC", 1000 * USDC)

    created = post_withdrawal(
        customer.client, withdrawal_body(wallet, "USDC", "10", OUTSIDE)
    ).json()

    fee = units(created["fee"], 6)
    # 100,000 gas at a few gwei, at 3000 USDC per ETH: a few cents, plus 0.50 USDC.
    assert 500_000 < fee < 500_000 + 100 * USDC
    held = wallet_balance(customer, wallet, "USDC")
    assert held.pending_out == 10 * USDC + fee


def test_the_idempotency_key_is_required(customer: ApiTenant) -> None:
    wallet = customer.factory.wallet()
    response = customer.client.post(
        "/v1/withdrawals", json=withdrawal_body(wallet, "ETH", "0.1", OUTSIDE)
    )
    assert_problem(response, 400, "idempotency-key-required")
    assert withdrawal_rows(customer.factory.sessions, wallet) == []


@pytest.mark.parametrize(
    ("change", "status", "problem"),
    [
        ({"asset": "USD"}, 422, "asset-not-on-chain"),
        ({"asset": "NOPE"}, 422, "unknown-asset"),
        ({"destination": crypto(OUTSIDE, "nowhere")}, 422, "unknown-chain"),
        ({"amount": "0.1234567890123456789"}, 422, "too-many-decimals"),
        ({"amount": "0"}, 422, "amount-not-positive"),
        ({"amount": "1e3"}, 422, "invalid-amount"),
        (
            {"destination": crypto("0x70997970c51812DC3A010C7d01b50e0d17dc79C8")},
            422,
            "address-checksum-mismatch",
        ),
        ({"destination": crypto("0x1234")}, 422, "invalid-request"),
        ({"destination": crypto("0x" + "0" * 40)}, 422, "zero-address"),
        ({"destination": crypto(BLOCKED)}, 422, "blocked-address"),
        ({"destination": crypto(BLOCKED.lower())}, 422, "blocked-address"),
        ({"amount": "5.000000000000000001"}, 422, "withdrawal-limit-exceeded"),
        ({"amount": "0.9"}, 422, "insufficient-funds"),
    ],
)
def test_a_bad_request_is_its_own_problem_and_writes_nothing(
    customer: ApiTenant, change: dict[str, object], status: int, problem: str
) -> None:
    wallet = customer.factory.wallet()
    customer.factory.fund(wallet, "ETH", ETH // 2)
    body = withdrawal_body(wallet, "ETH", "0.1", OUTSIDE) | change

    assert_problem(post_withdrawal(customer.client, body), status, problem)

    assert withdrawal_rows(customer.factory.sessions, wallet) == []
    after = wallet_balance(customer, wallet, "ETH")
    assert (after.posted, after.pending_out) == (ETH // 2, 0)


def test_all_lowercase_and_all_uppercase_addresses_are_accepted(customer: ApiTenant) -> None:
    wallet = customer.factory.wallet()
    customer.factory.fund(wallet, "ETH", ETH)
    for address in (OUTSIDE.lower(), "0x" + OUTSIDE[2:].upper()):
        response = post_withdrawal(customer.client, withdrawal_body(wallet, "ETH", "0.1", address))
        assert response.status_code == 201, response.text
        assert response.json()["destination"]["address"] == OUTSIDE


def test_a_frozen_wallet_cannot_withdraw(customer: ApiTenant) -> None:
    wallet = customer.factory.wallet()
    customer.factory.fund(wallet, "ETH", ETH)
    assert customer.client.post(f"/v1/wallets/{wallet}/freeze").status_code == 200

    response = post_withdrawal(customer.client, withdrawal_body(wallet, "ETH", "0.1", OUTSIDE))

    assert_problem(response, 409, "wallet-not-active")
    assert withdrawal_rows(customer.factory.sessions, wallet) == []


def test_the_rolling_daily_limit_counts_the_withdrawals_of_the_last_24_hours(
    customer: ApiTenant,
) -> None:
    wallet = customer.factory.wallet()
    customer.factory.fund(wallet, "ETH", 20 * ETH)
    assert (
        post_withdrawal(customer.client, withdrawal_body(wallet, "ETH", "5", OUTSIDE)).status_code
        == 201
    )

    refused = post_withdrawal(customer.client, withdrawal_body(wallet, "ETH", "3.5", OUTSIDE))

    assert_problem(refused, 422, "daily-withdrawal-limit-exceeded")
    assert len(withdrawal_rows(customer.factory.sessions, wallet)) == 1
    assert (
        post_withdrawal(customer.client, withdrawal_body(wallet, "ETH", "3", OUTSIDE)).status_code
        == 201
    )


def test_a_withdrawal_to_our_own_deposit_address_is_an_internal_transfer(
    customer: ApiTenant,
) -> None:
    sender, receiver = customer.factory.wallet(), customer.factory.wallet()
    customer.factory.fund(sender, "USDC", 100 * USDC)
    issued = customer.client.post(
        f"/v1/wallets/{receiver}/deposit-addresses", json={"chain": "devnet"}
    ).json()

    response = post_withdrawal(
        customer.client, withdrawal_body(sender, "USDC", "12.5", issued["address"])
    )

    assert response.status_code == 201, response.text
    done = response.json()
    assert (done["status"], done["internal"], done["fee"], done["tx_hash"]) == (
        "completed",
        True,
        "0.000000",
        None,
    )
    assert wallet_balance(customer, sender, "USDC").posted == 87_500_000
    assert wallet_balance(customer, receiver, "USDC").posted == 12_500_000
    assert events_of(customer.factory.sessions, done["id"]) == [
        ("withdrawal.completed", "completed")
    ]
    own = customer.client.post(f"/v1/wallets/{sender}/deposit-addresses", json={"chain": "devnet"})
    to_self = post_withdrawal(
        customer.client, withdrawal_body(sender, "USDC", "1", own.json()["address"])
    )
    assert_problem(to_self, 422, "destination-is-own-wallet")


def test_cancel_releases_the_hold_once(customer: ApiTenant) -> None:
    wallet = customer.factory.wallet()
    customer.factory.fund(wallet, "ETH", ETH)
    created = post_withdrawal(
        customer.client, withdrawal_body(wallet, "ETH", "0.5", OUTSIDE)
    ).json()

    cancelled = customer.client.post(f"/v1/withdrawals/{created['id']}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    after = wallet_balance(customer, wallet, "ETH")
    assert (after.posted, after.pending_out) == (ETH, 0)
    again = customer.client.post(f"/v1/withdrawals/{created['id']}/cancel")
    assert_problem(again, 409, "withdrawal-not-cancellable")
    assert events_of(customer.factory.sessions, created["id"]) == [
        ("withdrawal.requested", "queued"),
        ("withdrawal.cancelled", "cancelled"),
    ]


def test_one_operator_approves_above_the_first_threshold_two_above_the_second(
    customer: ApiTenant,
) -> None:
    wallet = customer.factory.wallet()
    customer.factory.fund(wallet, "ETH", 10 * ETH)
    requester = customer.client_with(Scope.WITHDRAW, Scope.OPERATOR, Scope.READ)
    first, second = customer.client_with(Scope.OPERATOR), customer.client_with(Scope.OPERATOR)
    withdrawer = customer.client_with(Scope.WITHDRAW)
    with requester, first, second, withdrawer:
        one = post_withdrawal(requester, withdrawal_body(wallet, "ETH", "1.5", OUTSIDE)).json()
        two = post_withdrawal(requester, withdrawal_body(wallet, "ETH", "2.5", OUTSIDE)).json()
        assert (one["status"], one["approvals_required"]) == ("pending_approval", 1)
        assert (two["status"], two["approvals_required"]) == ("pending_approval", 2)

        assert_problem(
            requester.post(f"/v1/withdrawals/{one['id']}/approve"), 403, "requester-cannot-approve"
        )
        assert_problem(
            withdrawer.post(f"/v1/withdrawals/{one['id']}/approve"),
            403,
            "missing-scope",
        )
        approved = first.post(f"/v1/withdrawals/{one['id']}/approve").json()
        assert (approved["status"], approved["approvals"]) == ("queued", 1)

        half = first.post(f"/v1/withdrawals/{two['id']}/approve").json()
        assert (half["status"], half["approvals"]) == ("pending_approval", 1)
        assert_problem(first.post(f"/v1/withdrawals/{two['id']}/approve"), 409, "already-approved")
        full = second.post(f"/v1/withdrawals/{two['id']}/approve").json()
        assert (full["status"], full["approvals"]) == ("queued", 2)
        assert_problem(
            second.post(f"/v1/withdrawals/{two['id']}/approve"),
            409,
            "withdrawal-not-awaiting-approval",
        )
    assert [e for e, _ in events_of(customer.factory.sessions, two["id"])] == [
        "withdrawal.requested",
        "withdrawal.approved",
        "withdrawal.approved",
    ]


def test_lists_filter_by_wallet_and_status_and_page_by_cursor(
    customer: ApiTenant, other_customer: ApiTenant
) -> None:
    wallet, other = customer.factory.wallet(), customer.factory.wallet()
    for w in (wallet, other):
        customer.factory.fund(w, "ETH", ETH)
    made = [
        post_withdrawal(customer.client, withdrawal_body(wallet, "ETH", "0.01", OUTSIDE)).json()
        for _ in range(3)
    ]
    post_withdrawal(customer.client, withdrawal_body(other, "ETH", "0.01", OUTSIDE))
    customer.client.post(f"/v1/withdrawals/{made[0]['id']}/cancel")

    first = customer.client.get("/v1/withdrawals", params={"wallet_id": wallet, "limit": 2}).json()
    rest = customer.client.get(
        "/v1/withdrawals", params={"wallet_id": wallet, "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [w["id"] for w in first["data"] + rest["data"]] == [m["id"] for m in reversed(made)]
    assert rest["next_cursor"] is None
    queued = customer.client.get(
        "/v1/withdrawals", params={"wallet_id": wallet, "status": "queued"}
    ).json()
    assert {w["id"] for w in queued["data"]} == {made[1]["id"], made[2]["id"]}
    assert_problem(
        customer.client.get("/v1/withdrawals", params={"state": "x"}), 422, "invalid-request"
    )
    assert_problem(
        other_customer.client.get(f"/v1/withdrawals/{made[1]['id']}"), 404, "unknown-withdrawal"
    )


def test_concurrent_requests_accept_exactly_what_the_wallet_covers(customer: ApiTenant) -> None:
    wallet = customer.factory.wallet()
    funded = ETH // 2
    customer.factory.fund(wallet, "ETH", funded)
    body = withdrawal_body(wallet, "ETH", "0.01", OUTSIDE)

    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda _: post_withdrawal(customer.client, body), range(200)))

    accepted = [r.json() for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    for response in refused:
        assert_problem(response, 422, "insufficient-funds")
    charges = {units(a["amount"], 18) + units(a["fee"], 18) for a in accepted}
    (charge,) = charges  # no block was mined meanwhile: one quote for all
    assert len(accepted) == funded // charge
    after = wallet_balance(customer, wallet, "ETH")
    assert after.available == funded - len(accepted) * charge >= 0
    assert len(withdrawal_rows(customer.factory.sessions, wallet)) == len(accepted)


def test_a_token_without_a_fee_rate_cannot_be_withdrawn(sending_chain: SendingChain) -> None:
    chain = sending_chain
    chain.rules = WithdrawalRules(policies={}, blocklist=frozenset())
    wallet = chain.factory.wallet()
    chain.factory.fund(wallet, chain.live.token, 100 * USDC)

    with pytest.raises(NoFeeRate):
        chain.request(wallet, chain.live.token, "10", OUTSIDE)

    assert withdrawal_rows(chain.factory.sessions, wallet) == []
