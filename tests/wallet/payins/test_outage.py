"""The bank does not answer: the pay-in is `unknown`, then resolved by the worker's periodic
job asking the bank by our key, exactly once, and never guessed. Meanwhile the pay-in requests
take turns to reach it."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import Row, text

from fiat import SandboxBankClient
from tests.api_helpers import assert_problem
from tests.bank_stack import BANK_KEY, BANK_SECRET, FiatTenant
from tests.webhook_fixtures import NOWHERE, CeleryProcesses
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


def test_pay_in_requests_take_turns_at_a_slow_bank(fiat_tenant: FiatTenant) -> None:
    """The API process takes one pay-in request to the bank at a time (the default of
    `payin_requests_at_once`); the next one waits its turn."""
    body = _payin_body(fiat_tenant)
    # The bank answers 504 after 0.1 s, within our timeout (1 s): each pay-in ends `unknown`.
    # A loaded machine may make the second give up waiting (0.5 s): it asks again.
    fiat_tenant.stack.control.configure(webhook_url=NOWHERE, outage="timeout", outage_delay=0.1)
    answers = _at_once(fiat_tenant, body, ["turns-1", "turns-2"], again_when_unavailable=True)
    assert [answer.json()["status"] for answer in answers] == ["unknown"] * 2

    first, second = _payins(fiat_tenant)
    # The second was recorded only once the first had its outcome.
    assert second.created_at >= first.updated_at


def test_a_pay_in_request_waiting_longer_than_a_bank_call_starts_nothing(
    fiat_tenant: FiatTenant,
) -> None:
    body = _payin_body(fiat_tenant)
    # The bank does not answer: the first request holds the turn for our whole timeout (1 s),
    # longer than the next one waits for it (0.5 s).
    fiat_tenant.stack.control.configure(webhook_url=NOWHERE, outage="timeout", outage_delay=5.0)
    answers = _at_once(fiat_tenant, body, ["waits-1", "waits-2"])
    # Whichever came first waited for the bank and is `unknown`; the other gave up its turn.
    (started,) = [answer for answer in answers if answer.status_code == 201]
    (refused,) = [answer for answer in answers if answer.status_code != 201]
    assert started.json()["status"] == "unknown"
    assert_problem(refused, 503, "bank-unavailable")
    assert len(_payins(fiat_tenant)) == 1

    fiat_tenant.stack.control.configure(outage="none")
    key = "waits-2" if answers[0] is started else "waits-1"
    retried = fiat_tenant.client.post("/v1/payins", json=body, headers={"Idempotency-Key": key})
    assert (retried.status_code, retried.json()["status"]) == (201, "pending")


def _payin_body(tenant: FiatTenant) -> dict[str, str]:
    return {
        "wallet_id": tenant.wallet,
        "bank_account_id": tenant.link(),
        "asset": "USD",
        "amount": "12.00",
    }


def _at_once(
    tenant: FiatTenant,
    body: dict[str, str],
    keys: list[str],
    *,
    again_when_unavailable: bool = False,
) -> list[httpx.Response]:
    """The pay-in request under each key, all sent at once; asked again under the same key
    while answered 503, if `again_when_unavailable`."""
    client = tenant.client

    def request(key: str) -> httpx.Response:
        with httpx.Client(base_url=client.base_url, headers=client.headers) as own:
            while True:
                answer = own.post("/v1/payins", json=body, headers={"Idempotency-Key": key})
                if answer.status_code != 503 or not again_when_unavailable:
                    return answer

    with ThreadPoolExecutor(len(keys)) as pool:
        return list(pool.map(request, keys))


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
