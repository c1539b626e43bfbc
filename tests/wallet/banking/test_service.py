"""The ledger against the provider's report (`compare_with_provider`), with a fake bank of the
test's own: payments in flight are listed and accounted for, a planted difference is reported
with the records behind it."""

import os

from fiat import InMemoryBankProvider, PayinStatus, PayoutStatus
from tests.factories import Factory
from tests.fake_bank import SECRET, FakeBankWallet
from wallet.assets.service import Catalogue
from wallet.banking.repository import provider_account
from wallet.banking.service import ProviderComparison, compare_with_provider, provider_check
from wallet.database import unit_of_work
from wallet.ledger import service as ledger
from wallet.ledger.service import Posting, Reason, TransactionRequest, system_account


def usd(wallet: FakeBankWallet) -> ProviderComparison:
    with unit_of_work(wallet.sessions) as session:
        (found,) = [c for c in compare_with_provider(session, wallet.bank) if c.currency == "USD"]
    return found


def test_payments_in_flight_are_not_differences_and_a_planted_entry_is(
    factory: Factory, catalogue: Catalogue
) -> None:
    bank = InMemoryBankProvider(SECRET, name=f"fake{os.urandom(4).hex()}")
    wallet = FakeBankWallet(factory, bank, catalogue)
    factory.fund(wallet.wallet, "USD", 100_00)
    settled = wallet.create("10.00")
    wallet.move(settled, PayinStatus.PROCESSING)
    wallet.deliver(wallet.move(settled, PayinStatus.SUCCEEDED))
    # Succeeded at the bank; its webhooks not delivered yet.
    paid_in = wallet.create("20.00")
    wallet.move(paid_in, PayinStatus.PROCESSING)
    wallet.move(paid_in, PayinStatus.SUCCEEDED)
    # Paid out by the bank; not known here yet.
    payout_id = wallet.request_payout("5.00")
    wallet.send_payouts()
    payout = wallet.payout(payout_id)
    wallet.move(payout, PayoutStatus.PROCESSING)
    wallet.move(payout, PayoutStatus.PAID)
    # Settled here from a webhook, then returned at the bank: that webhook not delivered yet.
    returned = wallet.create("30.00")
    wallet.move(returned, PayinStatus.PROCESSING)
    wallet.deliver(wallet.move(returned, PayinStatus.SUCCEEDED))
    wallet.move(returned, PayinStatus.RETURNED)

    comparison = usd(wallet)
    assert comparison.records == []
    assert comparison.ledger == 10_00 + 30_00
    assert comparison.provider == 10_00 + 20_00 - 5_00
    assert comparison.ledger + comparison.in_flight_net == comparison.provider
    assert len(comparison.in_flight) == 3
    for payment in (paid_in.id, payout_id, returned.id):
        assert any(payment in line for line in comparison.in_flight)
    with unit_of_work(wallet.sessions) as session:
        check = provider_check(session, bank)
    assert check.ok, check.violations
    assert any(paid_in.id in note for note in check.notes)

    # A planted difference: money put on the bank's account by no payment.
    with unit_of_work(wallet.sessions) as session:
        planted = ledger.post(
            session,
            TransactionRequest(
                Reason.ADJUSTMENT,
                [
                    Posting(provider_account(session, bank.name, "USD"), -7_00),
                    Posting(system_account(session, "bank:test", "USD"), 7_00),
                ],
            ),
        )
    comparison = usd(wallet)
    (record,) = comparison.records
    assert f"ledger transaction {planted} (adjustment" in record
    assert "700 at the provider by no pay-in or payout" in record
    assert comparison.ledger + comparison.in_flight_net - comparison.provider == 7_00
    assert len(comparison.in_flight) == 3

    # Once the webhooks arrive, nothing is in flight; the planted entry still differs.
    for event in bank.events:
        wallet.deliver(event)
    comparison = usd(wallet)
    assert (comparison.in_flight, comparison.in_flight_net) == ([], 0)
    assert comparison.records == [record]
    with unit_of_work(wallet.sessions) as session:
        check = provider_check(session, bank)
    assert not check.ok
    assert any(str(planted) in line for line in check.violations)
