import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from wallet.database import unit_of_work
from wallet.ledger import service as ledger
from wallet.ledger.errors import (
    AlreadyReversed,
    DuplicateExternalReference,
    ExceedsHold,
    HoldAlreadyResolved,
    InsufficientFunds,
    Unbalanced,
)
from wallet.ledger.repository import balance, posted_at_time, posted_at_version, system_account
from wallet.ledger.service import ExternalReference, Posting, Reason, TransactionRequest


def move(source: int, destination: int, amount: int, **extra: object) -> TransactionRequest:
    return TransactionRequest(
        reason=Reason.TRANSFER,
        postings=[Posting(source, -amount), Posting(destination, amount)],
        **extra,  # type: ignore[arg-type]
    )


def test_a_transaction_moves_money_and_versions_each_account(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice = factory.fund(factory.wallet(), "USD", 1_000)
    bob = factory.account(factory.wallet(), "USD")
    with unit_of_work(sessions) as session:
        ledger.post(session, move(alice, bob, 250, metadata={"note": "lunch"}))
        ledger.post(session, move(alice, bob, 50))
    with unit_of_work(sessions) as session:
        assert balance(session, alice).posted == 700
        assert balance(session, alice).version == 3
        assert balance(session, bob).posted == 300
        assert posted_at_version(session, alice, 1) == 1_000
        assert posted_at_version(session, alice, 2) == 750
        assert posted_at_version(session, bob, 2) == 300
        now = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        assert posted_at_time(session, alice, now) == 700


def test_a_user_account_never_goes_below_zero(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice = factory.fund(factory.wallet(), "USD", 100)
    bob = factory.account(factory.wallet(), "USD")
    with pytest.raises(InsufficientFunds), unit_of_work(sessions) as session:
        ledger.post(session, move(alice, bob, 101))
    with unit_of_work(sessions) as session:
        assert balance(session, alice).posted == 100
        assert balance(session, bob).version == 0


def test_unbalanced_postings_are_refused(factory: Factory, sessions: sessionmaker[Session]) -> None:
    alice = factory.fund(factory.wallet(), "USD", 100)
    bob = factory.account(factory.wallet(), "USD")
    request = TransactionRequest(
        reason=Reason.TRANSFER, postings=[Posting(alice, -10), Posting(bob, 9)]
    )
    with pytest.raises(Unbalanced), unit_of_work(sessions) as session:
        ledger.post(session, request)


def test_a_reversal_is_a_new_linked_transaction_written_once(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice = factory.fund(factory.wallet(), "USD", 100)
    bob = factory.account(factory.wallet(), "USD")
    with unit_of_work(sessions) as session:
        original = ledger.post(session, move(alice, bob, 40))
        ledger.reverse(session, original, {"why": "chargeback"})
    with unit_of_work(sessions) as session:
        assert balance(session, alice).posted == 100
        assert balance(session, bob).posted == 0
    with pytest.raises(AlreadyReversed), unit_of_work(sessions) as session:
        ledger.reverse(session, original)


def test_an_external_reference_is_unique_per_kind(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice = factory.fund(factory.wallet(), "USD", 100)
    bob = factory.account(factory.wallet(), "USD")
    reference = ExternalReference("provider-payment", f"pay-{alice}")
    with unit_of_work(sessions) as session:
        ledger.post(session, move(alice, bob, 1, external=reference))
    with pytest.raises(DuplicateExternalReference), unit_of_work(sessions) as session:
        ledger.post(session, move(alice, bob, 1, external=reference))
    with unit_of_work(sessions) as session:
        other_kind = ExternalReference("chain-tx", reference.ref)
        ledger.post(session, move(alice, bob, 1, external=other_kind))


def test_a_hold_reserves_then_posts_for_less(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice = factory.fund(factory.wallet(), "USDC", 1_000_000)
    with unit_of_work(sessions) as session:
        outside = system_account(session, "chain:devnet", "USDC")
        hold = ledger.place_hold(session, alice, outside, 600_000, Reason.WITHDRAWAL)
    with unit_of_work(sessions) as session:
        held = balance(session, alice)
        assert (held.posted, held.pending_out, held.available) == (1_000_000, 600_000, 400_000)
        with pytest.raises(InsufficientFunds):
            ledger.place_hold(session, alice, outside, 400_001, Reason.WITHDRAWAL)
    with unit_of_work(sessions) as session:
        with pytest.raises(ExceedsHold):
            ledger.post_hold(session, hold.id, 600_001)
        resolution = ledger.post_hold(session, hold.id, 550_000)
    assert resolution.status == "posted"
    with unit_of_work(sessions) as session:
        after = balance(session, alice)
        assert (after.posted, after.pending_out, after.available) == (450_000, 0, 450_000)
        with pytest.raises(HoldAlreadyResolved):
            ledger.void_hold(session, hold.id)


def test_a_voided_hold_releases_the_funds(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice = factory.fund(factory.wallet(), "EUR", 500)
    bob = factory.account(factory.wallet(), "EUR")
    with unit_of_work(sessions) as session:
        hold = ledger.place_hold(session, alice, bob, 500, Reason.PAYOUT)
        assert balance(session, bob).pending_in == 500
        assert ledger.void_hold(session, hold.id).status == "voided"
    with unit_of_work(sessions) as session:
        assert balance(session, alice).available == 500
        assert balance(session, bob).pending_in == 0


def test_holds_voided_together_release_their_funds_all_or_none(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice = factory.fund(factory.wallet(), "EUR", 500)
    bob = factory.account(factory.wallet(), "EUR")
    with unit_of_work(sessions) as session:
        holds = [ledger.place_hold(session, alice, bob, 100, Reason.PAYOUT).id for _ in range(3)]
        done = ledger.place_hold(session, alice, bob, 50, Reason.PAYOUT).id
        ledger.void_hold(session, done)
    with unit_of_work(sessions) as session:
        with pytest.raises(HoldAlreadyResolved):
            ledger.void_holds(session, [*holds, done])
        assert balance(session, alice).pending_out == 300
        ledger.void_holds(session, holds)
    with unit_of_work(sessions) as session:
        assert (balance(session, alice).available, balance(session, bob).pending_in) == (500, 0)
        with pytest.raises(HoldAlreadyResolved):
            ledger.void_holds(session, holds[:1])


def test_a_batch_reports_each_item_and_sees_earlier_items(
    factory: Factory, sessions: sessionmaker[Session]
) -> None:
    alice = factory.fund(factory.wallet(), "USD", 100)
    bob = factory.account(factory.wallet(), "USD")
    batch = [move(alice, bob, 60), move(alice, bob, 60), move(bob, alice, 10)]
    with unit_of_work(sessions) as session:
        results = ledger.apply(session, batch, atomic=False)
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, InsufficientFunds)
    with unit_of_work(sessions) as session:
        assert balance(session, alice).posted == 50
        atomic = ledger.apply(session, batch, atomic=True)
    assert all(isinstance(r.error, InsufficientFunds) for r in atomic)
    with unit_of_work(sessions) as session:
        assert balance(session, alice).posted == 50
        assert balance(session, alice).version == 3
