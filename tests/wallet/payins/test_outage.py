"""The bank does not answer: the pay-in is `unknown`, then resolved by the worker's periodic
job asking the bank by our key, exactly once, and never guessed."""

import pytest
from sqlalchemy import text

from fiat import SandboxBankClient
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
