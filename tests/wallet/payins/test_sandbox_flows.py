"""Pay-ins end to end: the API and the sandbox bank as real processes, over HTTP both ways."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from fiat import Payin, PayinStatus, ProviderEvent
from fiat.webhooks import delivery_body, sign_body, sign_events
from tests.api_helpers import assert_problem
from tests.bank_stack import BANK_SECRET, FiatTenant
from tests.webhook_fixtures import wait_until
from wallet.database import unit_of_work


def stored_events(tenant: FiatTenant, payin_id: str) -> list[tuple[str, str]]:
    with unit_of_work(tenant.factory.sessions) as session:
        rows = session.execute(
            text(
                "SELECT event_type, outcome FROM provider_events "
                "WHERE payload -> 'data' ->> 'idempotency_key' = :id ORDER BY payment_version"
            ),
            {"id": payin_id},
        )
        return [(row.event_type, row.outcome) for row in rows]


def test_bank_accounts_are_linked_listed_and_unlinked(fiat_tenant: FiatTenant) -> None:
    client = fiat_tenant.client
    body = {
        "wallet_id": fiat_tenant.wallet,
        "holder_name": "Ada Lovelace",
        "account_number": "DE0012345678",
        "currency": "EUR",
        "country": "DE",
    }
    first = client.post("/v1/bank-accounts", json=body, headers={"Idempotency-Key": "link-1"})
    assert first.status_code == 201, first.text
    account = first.json()
    assert (account["last4"], account["currency"], account["provider"]) == (
        "5678",
        "EUR",
        "sandbox",
    )
    assert "account_number" not in account and "token" not in account
    again = client.post("/v1/bank-accounts", json=body, headers={"Idempotency-Key": "link-1"})
    assert (again.status_code, again.json()["id"]) == (200, account["id"])

    closed = client.post("/v1/bank-accounts", json={**body, "account_number": "DE0010000000"})
    assert_problem(closed, 422, "bank-account-refused")
    unknown = client.post(
        "/v1/bank-accounts", json={"wallet_id": fiat_tenant.wallet, "token": "ba_nothing"}
    )
    assert_problem(unknown, 422, "bank-account-refused")
    for token in ("../payins", "ba_\x0c", "ba_x?y=1"):
        malformed = client.post(
            "/v1/bank-accounts", json={"wallet_id": body["wallet_id"], "token": token}
        )
        assert_problem(malformed, 422, "invalid-request")
    both = client.post("/v1/bank-accounts", json={**body, "token": "ba_x"})
    assert_problem(both, 422, "invalid-request")

    listed = client.get("/v1/bank-accounts", params={"wallet_id": fiat_tenant.wallet}).json()
    assert [a["id"] for a in listed["data"]] == [account["id"]]
    assert client.get(f"/v1/bank-accounts/{account['id']}").json() == account
    assert client.delete(f"/v1/bank-accounts/{account['id']}").status_code == 204
    assert_problem(client.get(f"/v1/bank-accounts/{account['id']}"), 404, "unknown-bank-account")


def test_a_payin_is_pending_in_until_paid_then_credited_less_the_fee(
    fiat_tenant: FiatTenant,
) -> None:
    quote = fiat_tenant.client.get(
        "/v1/fiat/fees", params={"rail": "payin", "asset": "USD", "amount": "100.00"}
    ).json()
    assert (quote["fee"], quote["net_amount"]) == ("0.75", "99.25")

    response = fiat_tenant.payin("100.00", key="payin-1")
    assert response.status_code == 201, response.text
    assert response.headers["Idempotent-Replayed"] == "false"
    payin = response.json()
    assert (payin["status"], payin["fee"], payin["net_amount"]) == ("pending", "0.75", "99.25")
    assert fiat_tenant.balance()["pending_in"] == "99.25"
    assert fiat_tenant.balance()["available"] == "0.00"

    fiat_tenant.stack.control.pay(payin["provider_payment_id"])
    fiat_tenant.wait_status(payin["id"], "succeeded")

    assert fiat_tenant.balance() == {
        "asset": "USD",
        "available": "99.25",
        "pending_in": "0.00",
        "pending_out": "0.00",
        "posted": "99.25",
    }
    assert fiat_tenant.events(payin["id"]) == [
        "payin.pending",
        "payin.processing",
        "payin.succeeded",
    ]
    # The create's answer and the `pending` webhook carry the same snapshot: one applies it.
    outcomes = [outcome for _, outcome in stored_events(fiat_tenant, payin["id"])]
    assert outcomes[1:] == ["applied", "applied"]


def test_a_retry_with_the_same_key_is_the_same_payin(fiat_tenant: FiatTenant) -> None:
    account = fiat_tenant.link()
    body = {
        "wallet_id": fiat_tenant.wallet,
        "bank_account_id": account,
        "asset": "USD",
        "amount": "5.00",
    }
    first = fiat_tenant.client.post("/v1/payins", json=body, headers={"Idempotency-Key": "k"})
    again = fiat_tenant.client.post("/v1/payins", json=body, headers={"Idempotency-Key": "k"})
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = fiat_tenant.client.post(
        "/v1/payins", json={**body, "amount": "6.00"}, headers={"Idempotency-Key": "k"}
    )
    assert_problem(other, 409, "idempotency-key-reused")
    missing = fiat_tenant.client.post("/v1/payins", json=body)
    assert missing.status_code in {400, 422}
    listed = fiat_tenant.client.get("/v1/payins", params={"wallet_id": fiat_tenant.wallet})
    assert [p["id"] for p in listed.json()["data"]] == [first.json()["id"]]


def test_an_eur_payin_that_fails_credits_nothing(fiat_tenant: FiatTenant) -> None:
    payin = fiat_tenant.payin("20.13", "EUR").json()
    assert fiat_tenant.balance("EUR")["pending_in"] == "20.03"
    fiat_tenant.stack.control.pay(payin["provider_payment_id"])
    failed = fiat_tenant.wait_status(payin["id"], "failed")
    assert failed["failure_code"] == "insufficient_funds"
    assert fiat_tenant.balance("EUR")["pending_in"] == "0.00"
    assert fiat_tenant.balance("EUR")["posted"] == "0.00"


def test_a_payin_returned_after_success_is_reversed(fiat_tenant: FiatTenant) -> None:
    payin = fiat_tenant.payin("10.31").json()
    fiat_tenant.stack.control.pay(payin["provider_payment_id"])
    fiat_tenant.wait_status(payin["id"], "returned")
    assert fiat_tenant.balance()["posted"] == "0.00"
    assert fiat_tenant.events(payin["id"])[-2:] == ["payin.succeeded", "payin.returned"]


def test_a_chargeback_after_spending_leaves_the_wallet_negative_and_restricted(
    fiat_tenant: FiatTenant,
) -> None:
    payin = fiat_tenant.payin("50.66").json()
    fiat_tenant.stack.control.pay(payin["provider_payment_id"])
    fiat_tenant.wait_status(payin["id"], "succeeded")
    other = fiat_tenant.factory.wallet("other")
    spend = {
        "source_wallet_id": fiat_tenant.wallet,
        "destination_wallet_id": other,
        "asset": "USD",
        "amount": "50.00",
    }
    spent = fiat_tenant.client.post("/v1/transfers", json=spend, headers={"Idempotency-Key": "s"})
    assert spent.status_code == 201, spent.text

    fiat_tenant.wait_status(payin["id"], "charged_back")

    assert fiat_tenant.balance()["posted"] == "-50.00"
    wallet = fiat_tenant.client.get(f"/v1/wallets/{fiat_tenant.wallet}").json()
    assert wallet["status"] == "restricted"
    again = fiat_tenant.client.post(
        "/v1/transfers", json={**spend, "amount": "0.01"}, headers={"Idempotency-Key": "s2"}
    )
    assert again.status_code == 409, again.text
    lift = f"/v1/wallets/{fiat_tenant.wallet}/unfreeze"
    assert_problem(fiat_tenant.client.post(lift), 409, "wallet-in-debt")
    back = {**spend, "source_wallet_id": other, "destination_wallet_id": fiat_tenant.wallet}
    repaid = fiat_tenant.client.post("/v1/transfers", json=back, headers={"Idempotency-Key": "r"})
    assert repaid.status_code == 201, repaid.text
    assert fiat_tenant.balance()["posted"] == "0.00"
    assert fiat_tenant.client.post(lift).json()["status"] == "active"
    overdraw = fiat_tenant.client.post(
        "/v1/transfers", json={**spend, "amount": "0.01"}, headers={"Idempotency-Key": "s3"}
    )
    assert_problem(overdraw, 422, "insufficient-funds")


def test_duplicated_webhooks_are_acknowledged_and_applied_once(fiat_tenant: FiatTenant) -> None:
    fiat_tenant.stack.control.configure(duplicate_webhooks=True)
    payin = fiat_tenant.payin("8.00").json()
    fiat_tenant.stack.control.pay(payin["provider_payment_id"])
    fiat_tenant.wait_status(payin["id"], "succeeded")
    wait_until(lambda: len(stored_events(fiat_tenant, payin["id"])) == 3)
    # One more redelivery of the success, as the provider would send it.
    with unit_of_work(fiat_tenant.factory.sessions) as session:
        event_id, payload = session.execute(
            text(
                "SELECT event_id, payload FROM provider_events "
                "WHERE payload -> 'data' ->> 'idempotency_key' = :id AND event_type = :type"
            ),
            {"id": payin["id"], "type": "payin.succeeded"},
        ).one()
    again = sign_body(BANK_SECRET, "msg_again", delivery_body([json.dumps(payload).encode()]))
    answer = httpx.post(fiat_tenant.stack.webhook_url, content=again.body, headers=again.headers)
    assert answer.json() == {"events": [{"event_id": event_id, "duplicate": True, "outcome": None}]}
    assert fiat_tenant.balance()["posted"] == "7.71"
    assert fiat_tenant.events(payin["id"]) == [
        "payin.pending",
        "payin.processing",
        "payin.succeeded",
    ]


@pytest.mark.parametrize("batch", [1, 50], ids=["a delivery each", "in one delivery"])
def test_webhooks_out_of_order_end_in_the_newest_status(
    fiat_tenant: FiatTenant, batch: int
) -> None:
    fiat_tenant.stack.control.configure(
        reverse_webhooks=True, webhook_hold=1.0, webhook_batch=batch
    )
    response = fiat_tenant.payin("9.00")
    payin = response.json()
    fiat_tenant.stack.control.pay(payin["provider_payment_id"])
    wait_until(lambda: len(stored_events(fiat_tenant, payin["id"])) == 3, timeout=15)
    assert stored_events(fiat_tenant, payin["id"]) == [
        ("payin.pending", "stale"),
        ("payin.processing", "stale"),
        ("payin.succeeded", "applied"),
    ]
    assert fiat_tenant.client.get(f"/v1/payins/{payin['id']}").json()["status"] == "succeeded"
    assert fiat_tenant.balance()["posted"] == "8.70"


def _payin_event(key: str, status: PayinStatus = PayinStatus.PENDING) -> ProviderEvent:
    now = datetime.now(UTC)
    payment = Payin(f"pi_{uuid.uuid4().hex}", key, "ba_x", 500, "USD", status, 1, now, now)
    return ProviderEvent(f"evt_{uuid.uuid4().hex}", f"payin.{status}", now, payment)


def test_forged_and_stale_webhooks_are_refused_and_nothing_is_stored(
    fiat_tenant: FiatTenant,
) -> None:
    url = fiat_tenant.stack.webhook_url
    forged = sign_events("whsec_" + "A" * 43 + "=", [_payin_event("pin_forged")])
    assert_problem(
        httpx.post(url, content=forged.body, headers=forged.headers), 401, "webhook-refused"
    )
    stale = sign_events(
        BANK_SECRET, [_payin_event("pin_stale")], at=datetime.now(UTC) - timedelta(minutes=10)
    )
    assert_problem(
        httpx.post(url, content=stale.body, headers=stale.headers), 401, "webhook-refused"
    )
    tampered = sign_events(BANK_SECRET, [_payin_event("pin_tampered")])
    body = tampered.body.replace(b"500", b"900")
    assert_problem(httpx.post(url, content=body, headers=tampered.headers), 401, "webhook-refused")
    for key in ("pin_forged", "pin_stale", "pin_tampered"):
        assert stored_events(fiat_tenant, key) == []


def test_an_event_for_an_unknown_payment_is_kept_and_acknowledged(
    fiat_tenant: FiatTenant,
) -> None:
    unknown = _payin_event("pin_nobody")
    event = sign_events(BANK_SECRET, [unknown])
    url = fiat_tenant.stack.webhook_url
    first = httpx.post(url, content=event.body, headers=event.headers)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "events": [{"event_id": unknown.id, "duplicate": False, "outcome": "unmatched"}]
    }
    again = httpx.post(url, content=event.body, headers=event.headers)
    assert again.json()["events"][0]["duplicate"] is True
    assert stored_events(fiat_tenant, "pin_nobody") == [("payin.pending", "unmatched")]
    wrong_provider = httpx.post(
        url.replace("/sandbox", "/other"), content=event.body, headers=event.headers
    )
    assert_problem(wrong_provider, 404, "unknown-bank-provider")
