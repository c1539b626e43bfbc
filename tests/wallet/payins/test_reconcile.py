"""`wallet reconcile` against the sandbox bank: a record the bank changed silently is found,
with the pay-in behind it."""

import pytest
from typer.testing import CliRunner

from fiat import SandboxBankClient
from tests.bank_stack import BANK_KEY, BANK_SECRET, FiatTenant
from wallet.banking.service import compare_with_provider
from wallet.cli import app
from wallet.database import unit_of_work


def test_a_planted_difference_is_reported_with_its_payin(
    fiat_tenant: FiatTenant, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    payin = fiat_tenant.payin("12.00").json()
    fiat_tenant.stack.control.pay(payin["provider_payment_id"])
    fiat_tenant.wait_status(payin["id"], "succeeded")
    url = fiat_tenant.stack.sandbox.options.url
    with SandboxBankClient(url, BANK_KEY, BANK_SECRET) as bank:
        with unit_of_work(fiat_tenant.factory.sessions) as session:
            before = compare_with_provider(session, bank)
        assert not [r for d in before for r in d.records if payin["id"] in r]

        fiat_tenant.stack.control.amend(payin["provider_payment_id"], amount=1100)
        with unit_of_work(fiat_tenant.factory.sessions) as session:
            (usd,) = [d for d in compare_with_provider(session, bank) if d.currency == "USD"]
    # Other tests' payments may be in flight at the shared bank: they are accounted for.
    assert usd.provider - (usd.ledger + usd.in_flight_net) == -100
    (record,) = [r for r in usd.records if payin["id"] in r]
    assert "ledger succeeded 1200 net 1200 (v3), provider succeeded 1100 net 1100 (v3)" in record

    for name, value in fiat_tenant.stack.environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WALLET_DATABASE_URL", database_url)
    reconciled = CliRunner().invoke(app, ["reconcile"])
    assert reconciled.exit_code == 1, reconciled.output
    assert (
        "FAIL the ledger's bank:sandbox balances match the provider's report" in reconciled.output
    )
    assert payin["id"] in reconciled.output
