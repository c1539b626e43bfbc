"""Idempotent transfers in batches: one statement makes, replays and refuses each on its own."""

from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from tests.wallet.transfers.keyed import keyed
from wallet.assets.service import Catalogue
from wallet.database import unit_of_work
from wallet.idempotency.errors import IdempotencyConflict
from wallet.idempotency.service import Outcome
from wallet.ledger.errors import InsufficientFunds
from wallet.transfers.errors import SameWallet
from wallet.transfers.service import transfers_once
from wallet.wallets.errors import UnknownWallet


def stored(sessions: sessionmaker[Session], factory: Factory, key: str) -> Any:
    with unit_of_work(sessions) as session:
        return session.execute(
            text("SELECT outcome FROM idempotency_keys WHERE scope = :tenant AND key = :key"),
            {"tenant": factory.tenant_id, "key": key},
        ).scalar_one_or_none()


def events_about(sessions: sessionmaker[Session], transfer_ids: list[str]) -> list[str]:
    with unit_of_work(sessions) as session:
        return list(
            session.execute(
                text("SELECT payload->>'id' FROM outbox WHERE payload->>'id' = ANY(:ids)"),
                {"ids": transfer_ids},
            ).scalars()
        )


def test_each_transfer_of_a_batch_has_its_own_answer(
    factory: Factory,
    sessions: sessionmaker[Session],
    catalogue: Catalogue,
    connection: psycopg.Connection[Any],
) -> None:
    alice, bob, carol = factory.wallet(), factory.wallet(), factory.wallet()
    factory.fund(alice, "USD", 500)
    batch = [
        keyed(factory, alice, bob, 300, "made"),
        keyed(factory, alice, carol, 300, "too-much"),  # 200 left after the first
        keyed(factory, alice, "wal_nobody", 1, "unknown"),
        keyed(factory, alice, alice, 1, "same"),
        keyed(factory, alice, carol, 200, "made-too"),
    ]
    answers = transfers_once(connection, batch, catalogue)
    made, too_much, unknown, same, made_too = answers
    assert isinstance(made, Outcome) and isinstance(made_too, Outcome)
    assert made.value is not None and made_too.value is not None
    assert (made.value["amount"], made_too.value["amount"]) == ("3.00", "2.00")
    assert isinstance(too_much, Outcome) and isinstance(unknown, Outcome)
    with pytest.raises(InsufficientFunds):
        too_much.unwrap()
    with pytest.raises(UnknownWallet):
        unknown.unwrap()
    assert isinstance(same, SameWallet)
    # Transfers refused by the database leave their refusal under their key, one refused
    # before it leaves nothing; made ones leave their outcome and their event.
    assert stored(sessions, factory, "too-much")["refused"]["error"] == "insufficient_funds"
    assert stored(sessions, factory, "unknown")["refused"]["error"] == "unknown_wallet"
    assert stored(sessions, factory, "same") is None
    assert stored(sessions, factory, "made") == made.to_json()
    ids = [made.value["id"], made_too.value["id"]]
    assert sorted(events_about(sessions, ids)) == sorted(ids)


def test_a_used_key_is_replayed_or_a_conflict(
    factory: Factory, catalogue: Catalogue, connection: psycopg.Connection[Any]
) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    factory.fund(alice, "USD", 1_000)
    (first,) = transfers_once(connection, [keyed(factory, alice, bob, 100, "k")], catalogue)
    again, other = transfers_once(
        connection,
        [keyed(factory, alice, bob, 100, "k"), keyed(factory, alice, bob, 100, "k2")],
        catalogue,
    )
    assert isinstance(first, Outcome) and isinstance(again, Outcome)
    assert (again.value, again.replayed) == (first.value, True)
    assert isinstance(other, Outcome) and not other.replayed
    (reused,) = transfers_once(connection, [keyed(factory, alice, bob, 999, "k")], catalogue)
    assert isinstance(reused, IdempotencyConflict)
