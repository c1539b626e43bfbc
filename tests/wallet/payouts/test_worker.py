"""Payouts sent by a real worker to the sandbox bank: paid, failed, returned; and a worker
killed with SIGKILL right after the bank accepted a payout."""

import pytest
from sqlalchemy import text

from fiat import SandboxBankClient
from tests.bank_stack import BANK_KEY, BANK_SECRET, FiatTenant
from tests.webhook_fixtures import NOWHERE, CeleryProcesses, wait_until
from wallet.database import unit_of_work

# Seconds to wait for the worker: one restarted under coverage on a loaded machine took 27 s to
# be ready again.
PATIENCE = 60


def payout(tenant: FiatTenant, amount: str, currency: str, account: str) -> str:
    """A withdrawal of the tenant's wallet to the linked `account`: a payout."""
    body = {
        "wallet_id": tenant.wallet,
        "asset": currency,
        "amount": amount,
        "destination": {"type": "bank_account", "bank_account_id": account},
    }
    key = {"Idempotency-Key": f"payout-{tenant.wallet}-{amount}"}
    response = tenant.client.post("/v1/withdrawals", json=body, headers=key)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "sending"
    assert created["destination"] == body["destination"]
    again = tenant.client.post("/v1/withdrawals", json=body, headers=key)
    assert again.json()["id"] == created["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    return str(created["id"])


def status(tenant: FiatTenant, payout_id: str) -> str:
    with unit_of_work(tenant.factory.sessions) as session:
        return str(
            session.execute(
                text("SELECT status FROM payouts WHERE id = :id"), {"id": payout_id}
            ).scalar_one()
        )


def payments_at_the_bank(tenant: FiatTenant, key: str) -> int:
    with SandboxBankClient(tenant.stack.sandbox.options.url, BANK_KEY, BANK_SECRET) as bank:
        return sum(
            1
            for report in bank.balance_reports()
            for line in report.lines
            if line.idempotency_key == key
        )


@pytest.mark.parametrize(
    ("amount", "currency", "final", "posted"),
    [
        ("30.00", "USD", "paid", "69.00"),
        ("30.00", "EUR", "paid", "69.00"),
        ("30.13", "USD", "failed", "100.00"),
        ("30.31", "EUR", "returned", "100.00"),
    ],
)
def test_payouts_end_paid_failed_or_returned(
    fiat_tenant: FiatTenant,
    *,
    worker: CeleryProcesses,
    amount: str,
    currency: str,
    final: str,
    posted: str,
) -> None:
    fiat_tenant.factory.fund(fiat_tenant.wallet, currency, 100_00)
    payout_id = payout(fiat_tenant, amount, currency, fiat_tenant.link(currency))
    assert fiat_tenant.balance(currency)["pending_out"] != "0.00"
    wait_until(lambda: status(fiat_tenant, payout_id) == final, timeout=PATIENCE)
    shown = fiat_tenant.client.get(f"/v1/payouts/{payout_id}").json()
    assert (shown["status"], shown["amount"], shown["fee"]) == (final, amount, "1.00")
    balance = fiat_tenant.balance(currency)
    assert (balance["posted"], balance["pending_out"]) == (posted, "0.00")
    assert payments_at_the_bank(fiat_tenant, payout_id) == 1


def test_a_worker_killed_right_after_the_bank_accepted_sends_one_payout(
    fiat_tenant: FiatTenant, worker: CeleryProcesses
) -> None:
    control = fiat_tenant.stack.control
    fiat_tenant.factory.fund(fiat_tenant.wallet, "USD", 100_00)
    account = fiat_tenant.link()
    accepted_before = sum(1 for e in control.events() if e["type"] == "payout.pending")
    # The bank does the work and then holds its answer; no webhook reaches us meanwhile.
    control.configure(webhook_url=NOWHERE, outage="timeout_after", outage_delay=30.0)
    payout_id = payout(fiat_tenant, "40.00", "USD", account)

    def accepted() -> bool:
        return sum(1 for e in control.events() if e["type"] == "payout.pending") > accepted_before

    wait_until(accepted, timeout=PATIENCE, interval=0.02)
    worker.kill("worker")  # SIGKILL: the bank accepted, its answer never came
    assert status(fiat_tenant, payout_id) == "sending"

    control.configure(outage="none")
    wait_until(lambda: status(fiat_tenant, payout_id) == "paid", timeout=PATIENCE)

    assert payments_at_the_bank(fiat_tenant, payout_id) == 1
    balance = fiat_tenant.balance()
    assert (balance["posted"], balance["pending_out"]) == ("59.00", "0.00")
