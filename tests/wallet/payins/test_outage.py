"""The bank does not answer: the pay-in is `unknown`, then resolved by the worker's periodic
job asking the bank by our key, exactly once, and never guessed."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Row, text

from fiat import Payin, PayinStatus, ProviderEvent, SandboxBankClient
from fiat.webhooks import sign_event
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


def test_pay_in_requests_go_to_a_slow_bank_one_at_a_time_and_webhooks_are_still_answered(
    fiat_tenant: FiatTenant,
) -> None:
    """The API process takes one pay-in request to the bank at a time (the default of
    `payin_requests_at_once`); the next one waits without holding a thread."""
    control = fiat_tenant.stack.control
    body = {
        "wallet_id": fiat_tenant.wallet,
        "bank_account_id": fiat_tenant.link(),
        "asset": "USD",
        "amount": "12.00",
    }
    # Each call to the bank goes unanswered until our timeout (1 s): it ends `unknown`.
    control.configure(webhook_url=NOWHERE, outage="timeout", outage_delay=5.0)
    client = fiat_tenant.client

    def request(key: str) -> httpx.Response:
        with httpx.Client(base_url=client.base_url, headers=client.headers) as own:
            return own.post("/v1/payins", json=body, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(2) as pool:
        answers = [pool.submit(request, f"one-at-a-time-{n}") for n in (1, 2)]
        wait_until(lambda: len(_payins(fiat_tenant)) == 1, timeout=10)
        event = sign_event(BANK_SECRET, _pending_event("pin_while_waiting"))
        webhook = httpx.post(
            fiat_tenant.stack.webhook_url, content=event.body, headers=event.headers
        )
        assert webhook.status_code == 200, webhook.text
        assert not all(answer.done() for answer in answers)
        assert [answer.result().json()["status"] for answer in answers] == ["unknown"] * 2

    first, second = _payins(fiat_tenant)
    # The second was recorded only once the first had its outcome.
    assert second.created_at >= first.updated_at
    control.configure(outage="none")


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


def _pending_event(key: str) -> ProviderEvent:
    now = datetime.now(UTC)
    payment = Payin(
        f"pi_{uuid.uuid4().hex}", key, "ba_x", 500, "USD", PayinStatus.PENDING, 1, now, now
    )
    return ProviderEvent(f"evt_{uuid.uuid4().hex}", "payin.pending", now, payment)
