"""The bank does not answer: the pay-in is `unknown`, then resolved by the worker's periodic
job asking the bank by our key, exactly once, and never guessed. Meanwhile the pay-in requests
wait for the call under way, and go to the bank together in the next."""

from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any

import httpx
import pytest
from sqlalchemy import Row, text

from fiat import SandboxBankClient
from tests.api_helpers import assert_problem
from tests.bank_stack import BANK_KEY, BANK_SECRET, FiatTenant
from tests.webhook_fixtures import NOWHERE, CeleryProcesses, wait_until
from wallet.database import unit_of_work


@pytest.mark.parametrize("outage", ["timeout_after", "error_after", "timeout"])
def test_an_unknown_outcome_is_resolved_once_when_the_bank_is_back(
    fiat_tenant: FiatTenant, worker: CeleryProcesses, outage: str
) -> None:
    control = fiat_tenant.stack.control
    bank_account = fiat_tenant.link()
    # Only the periodic job may settle it: no webhook reaches us meanwhile.
    control.configure(webhook_url=NOWHERE, outage=outage, outage_delay=2.0)
    body = {
        "wallet_id": fiat_tenant.wallet,
        "bank_account_id": bank_account,
        "asset": "USD",
        "amount": "40.00",
    }
    response = fiat_tenant.client.post(
        "/v1/payins", json=body, headers={"Idempotency-Key": f"outage-{outage}"}
    )
    assert response.status_code == 201, response.text
    payin = response.json()
    assert payin["status"] == "unknown"
    assert fiat_tenant.balance()["pending_in"] == "0.00"

    control.configure(outage="none")
    fiat_tenant.wait_status(payin["id"], "pending")

    assert fiat_tenant.balance()["pending_in"] == "39.55"
    with SandboxBankClient(fiat_tenant.stack.sandbox.options.url, BANK_KEY, BANK_SECRET) as bank:
        lines = [
            line
            for report in bank.balance_reports()
            for line in report.lines
            if line.idempotency_key == payin["id"]
        ]
    assert len(lines) == 1
    with unit_of_work(fiat_tenant.factory.sessions) as session:
        holds = session.execute(
            text("SELECT count(*) FROM holds WHERE metadata ->> 'payin_id' = :id"),
            {"id": payin["id"]},
        ).scalar_one()
    assert holds == 1
    assert fiat_tenant.events(payin["id"]) == ["payin.unknown", "payin.pending"]


def test_pay_in_requests_that_come_while_the_bank_is_asked_go_together_in_the_next_call(
    fiat_tenant: FiatTenant,
) -> None:
    """An API process asks the bank about one batch of pay-in requests at a time; those that
    come meanwhile wait, and their records, keys and call to the bank are one batch."""
    body = _payin_body(fiat_tenant)
    # The bank answers 504 after 0.3 s, within our timeout (1 s): each pay-in ends `unknown`.
    fiat_tenant.stack.control.configure(webhook_url=NOWHERE, outage="timeout", outage_delay=0.3)
    # The later requests' clients are made and connected before: making one takes a good
    # part of those 0.3 s on a loaded machine.
    clients = [_connected(fiat_tenant) for _ in range(3)]
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(_post, fiat_tenant, body, "together-0")
        wait_until(lambda: len(_payins(fiat_tenant)) == 1, interval=0.01)  # its call is under way
        later = [
            pool.submit(_post_with, client, body, f"together-{n}")
            for n, client in enumerate(clients, start=1)
        ]
        answers = [first.result(), *(answer.result() for answer in later)]
    for client in clients:
        client.close()
    assert [answer.json()["status"] for answer in answers] == ["unknown"] * 4

    alone, *together = _payins(fiat_tenant)
    # Recorded once the first had its outcome, in one transaction (one `now()`).
    assert {payin.created_at for payin in together} == {together[0].created_at}
    assert together[0].created_at >= alone.updated_at


def test_a_pay_in_request_waiting_longer_than_a_bank_call_starts_nothing(
    fiat_tenant: FiatTenant,
) -> None:
    body = _payin_body(fiat_tenant)
    # The bank does not answer: the first request's call lasts our whole timeout (1 s),
    # longer than the next one waits for it to end (0.5 s).
    fiat_tenant.stack.control.configure(webhook_url=NOWHERE, outage="timeout", outage_delay=5.0)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(_post, fiat_tenant, body, "waits-1")
        wait_until(lambda: len(_payins(fiat_tenant)) == 1)
        refused = _post(fiat_tenant, body, "waits-2")
        started = first.result()
    assert started.json()["status"] == "unknown"
    assert_problem(refused, 503, "bank-unavailable")
    assert len(_payins(fiat_tenant)) == 1

    fiat_tenant.stack.control.configure(outage="none")
    retried = _post(fiat_tenant, body, "waits-2")
    assert (retried.status_code, retried.json()["status"]) == (201, "pending")


def _payin_body(tenant: FiatTenant) -> dict[str, str]:
    return {
        "wallet_id": tenant.wallet,
        "bank_account_id": tenant.link(),
        "asset": "USD",
        "amount": "12.00",
    }


def _post(tenant: FiatTenant, body: dict[str, str], key: str) -> httpx.Response:
    with closing(_connected(tenant)) as client:
        return _post_with(client, body, key)


def _connected(tenant: FiatTenant) -> httpx.Client:
    """A client of the tenant's own (requests in parallel), its connection open."""
    client = httpx.Client(base_url=tenant.client.base_url, headers=tenant.client.headers)
    client.get("/healthz").raise_for_status()
    return client


def _post_with(client: httpx.Client, body: dict[str, str], key: str) -> httpx.Response:
    return client.post("/v1/payins", json=body, headers={"Idempotency-Key": key})


def _payins(tenant: FiatTenant) -> list[Row[Any]]:
    with unit_of_work(tenant.factory.sessions) as session:
        return list(
            session.execute(
                text(
                    "SELECT created_at, updated_at FROM payins WHERE wallet_id = :wallet "
                    "ORDER BY created_at"
                ),
                {"wallet": tenant.wallet},
            )
        )
