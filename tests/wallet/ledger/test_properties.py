"""Random sequences of ledger operations keep every invariant and match a simple model."""

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from wallet.database import unit_of_work
from wallet.errors import WalletError
from wallet.ledger import service as ledger
from wallet.ledger.reconcile import check_ledger
from wallet.ledger.repository import balance
from wallet.ledger.service import Posting, Reason, TransactionRequest

ACCOUNTS = 4
START = 100


@dataclass
class Model:
    """The balances as they must be, per account slot, and what can still be resolved."""

    posted: list[int] = field(default_factory=lambda: [START] * ACCOUNTS)
    pending_out: list[int] = field(default_factory=lambda: [0] * ACCOUNTS)
    pending_in: list[int] = field(default_factory=lambda: [0] * ACCOUNTS)
    open_holds: list[tuple[int, int, int, int]] = field(default_factory=list)
    reversible: list[tuple[int, int, int, int]] = field(default_factory=list)

    def available(self, slot: int) -> int:
        return self.posted[slot] - self.pending_out[slot]

    def move(self, source: int, destination: int, amount: int) -> None:
        self.posted[source] -= amount
        self.posted[destination] += amount


slots = st.integers(0, ACCOUNTS - 1)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("transfer"), slots, slots, st.integers(1, 150)),
        st.tuples(st.just("hold"), slots, slots, st.integers(1, 150)),
        st.tuples(st.just("post"), st.integers(0, 9), st.integers(1, 100), st.just(0)),
        st.tuples(st.just("void"), st.integers(0, 9), st.just(0), st.just(0)),
        st.tuples(st.just("reverse"), st.integers(0, 9), st.just(0), st.just(0)),
    ),
    max_size=25,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps)
def test_random_operations_keep_every_invariant(
    factory: Factory, sessions: sessionmaker[Session], script: list[tuple[str, int, int, int]]
) -> None:
    accounts = [factory.fund(factory.wallet(), "USD", START) for _ in range(ACCOUNTS)]
    model = Model()
    for kind, a, b, amount in script:
        with unit_of_work(sessions) as session:
            run_step(session, model, accounts, (kind, a, b, amount))
    with unit_of_work(sessions) as session:
        for slot, account in enumerate(accounts):
            found = balance(session, account)
            expected = (model.posted[slot], model.pending_out[slot], model.pending_in[slot])
            assert (found.posted, found.pending_out, found.pending_in) == expected
        assert all(check.ok for check in check_ledger(session))


def run_step(
    session: Session, model: Model, accounts: list[int], step: tuple[str, int, int, int]
) -> None:
    kind, a, b, amount = step
    if kind in {"transfer", "hold"} and a == b:
        return
    if kind == "transfer":
        request = TransactionRequest(
            Reason.TRANSFER, [Posting(accounts[a], -amount), Posting(accounts[b], amount)]
        )
        if model.available(a) < amount:
            with pytest.raises(WalletError):
                ledger.post(session, request)
            return
        model.reversible.append((ledger.post(session, request), a, b, amount))
        model.move(a, b, amount)
    elif kind == "hold":
        if model.available(a) < amount:
            with pytest.raises(WalletError):
                ledger.place_hold(session, accounts[a], accounts[b], amount, Reason.PAYOUT)
            return
        hold = ledger.place_hold(session, accounts[a], accounts[b], amount, Reason.PAYOUT)
        model.open_holds.append((hold.id, a, b, amount))
        model.pending_out[a] += amount
        model.pending_in[b] += amount
    elif kind in {"post", "void"} and model.open_holds:
        hold_id, source, destination, held = model.open_holds.pop(a % len(model.open_holds))
        model.pending_out[source] -= held
        model.pending_in[destination] -= held
        if kind == "void":
            ledger.void_hold(session, hold_id)
            return
        posted = min(b, held)
        resolution = ledger.post_hold(session, hold_id, posted)
        assert resolution.transaction_id is not None
        model.reversible.append((resolution.transaction_id, source, destination, posted))
        model.move(source, destination, posted)
    elif kind == "reverse" and model.reversible:
        transaction, source, destination, moved = model.reversible.pop(a % len(model.reversible))
        if model.available(destination) < moved:
            with pytest.raises(WalletError):
                ledger.reverse(session, transaction)
            model.reversible.append((transaction, source, destination, moved))
            return
        ledger.reverse(session, transaction)
        model.move(destination, source, moved)
