"""Transfers racing other writers, on real parallel connections: freezes, locked accounts,
a key given twice, and a retry right after a refusal."""

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from tests.wallet.transfers.keyed import keyed
from wallet.assets.service import Catalogue
from wallet.batching import Batcher
from wallet.database import statement_pool, unit_of_work
from wallet.errors import WalletError
from wallet.idempotency.service import Outcome
from wallet.ledger.errors import InsufficientFunds
from wallet.ledger.repository import balance
from wallet.transfers.service import KeyedTransfer, transfers_once
from wallet.wallets.models import WalletStatus
from wallet.wallets.service import WalletNotActive, set_status


def transfer_alone(
    database_url: str, catalogue: Catalogue, transfer: KeyedTransfer, pid: "Future[int]"
) -> Outcome | WalletError:
    """The transfer on a connection of its own, as the API makes it; `pid` gets its backend."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        pid.set_result(connection.info.backend_pid)
        (answer,) = transfers_once(connection, [transfer], catalogue)
        return answer


def blocked_by(database_url: str, pid: int) -> list[int]:
    """The backends waiting for a lock that `pid` holds."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (pid,)
        ).fetchall()
    return [row[0] for row in rows]


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def lock_account(database_url: str, account: int) -> psycopg.Connection[Any]:
    """A connection holding the account's row lock until it rolls back."""
    holder = psycopg.connect(database_url)
    holder.execute("SELECT 1 FROM accounts WHERE id = %s FOR UPDATE", (account,))
    return holder


def posted(sessions: sessionmaker[Session], account: int) -> int:
    with unit_of_work(sessions) as session:
        return balance(session, account).posted


def freeze(sessions: sessionmaker[Session], tenant_id: str, wallet_id: str) -> None:
    with unit_of_work(sessions) as session:
        set_status(session, tenant_id, wallet_id, WalletStatus.FROZEN)


def test_a_freeze_waits_for_a_transfer_in_flight(
    factory: Factory, sessions: sessionmaker[Session], catalogue: Catalogue, database_url: str
) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    account = factory.fund(alice, "USD", 1_000)
    holder = lock_account(database_url, account)
    transfer_pid: Future[int] = Future()
    with ThreadPoolExecutor(max_workers=2) as threads:
        try:
            # The transfer has read alice's wallet and waits for her account.
            out = keyed(factory, alice, bob, 400, "out")
            moving = threads.submit(transfer_alone, database_url, catalogue, out, transfer_pid)
            pid = transfer_pid.result()
            wait_until(lambda: pid in blocked_by(database_url, holder.info.backend_pid))
            freezing = threads.submit(freeze, sessions, factory.tenant_id, alice)
            wait_until(lambda: freezing.done() or blocked_by(database_url, pid) != [])
            answered_while_in_flight = freezing.done()
        finally:
            holder.rollback()
            holder.close()
        made = moving.result()
        freezing.result()
    # The freeze answered only after the transfer committed: no commit after it moved money.
    assert not answered_while_in_flight
    assert isinstance(made, Outcome) and made.value is not None
    assert posted(sessions, account) == 600


def test_a_transfer_that_waited_for_a_freeze_is_refused(
    factory: Factory, sessions: sessionmaker[Session], catalogue: Catalogue, database_url: str
) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    account = factory.fund(alice, "USD", 1_000)
    transfer_pid: Future[int] = Future()
    with ThreadPoolExecutor(max_workers=1) as threads, unit_of_work(sessions) as session:
        freezer = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        set_status(session, factory.tenant_id, alice, WalletStatus.FROZEN)
        out = keyed(factory, alice, bob, 400, "out")
        moving = threads.submit(transfer_alone, database_url, catalogue, out, transfer_pid)
        pid = transfer_pid.result()
        wait_until(lambda: moving.done() or pid in blocked_by(database_url, freezer))
    refused = moving.result()
    assert isinstance(refused, Outcome)
    with pytest.raises(WalletNotActive):
        refused.unwrap()
    assert posted(sessions, account) == 1_000


def test_a_transfer_waiting_for_a_locked_account_holds_up_no_other_tenant(
    factory: Factory,
    sessions: sessionmaker[Session],
    catalogue: Catalogue,
    engine: Engine,
    database_url: str,
) -> None:
    other = Factory(sessions, catalogue)
    alice, bob = factory.wallet(), factory.wallet()
    carol, dave = other.wallet(), other.wallet()
    locked = factory.fund(alice, "USD", 1_000)
    other.fund(carol, "USD", 1_000)
    statements = statement_pool(engine, 4)
    batcher = Batcher(
        "transfers",
        statements,
        partial(transfers_once, catalogue=catalogue),
        apart=lambda transfer: (transfer.key.scope, transfer.key.key),
    )

    async def meanwhile() -> tuple[bool, Outcome | WalletError, Outcome | WalletError]:
        holder = lock_account(database_url, locked)
        try:
            stuck = asyncio.ensure_future(batcher.submit(keyed(factory, alice, bob, 100, "a")))
            await asyncio.to_thread(
                wait_until, lambda: blocked_by(database_url, holder.info.backend_pid) != []
            )
            # Answered while alice's account is still locked (a bound, not a timing: without
            # it a test of the old batcher would wait forever).
            unrelated = await asyncio.wait_for(
                batcher.submit(keyed(other, carol, dave, 100, "c")), timeout=20
            )
            still_waiting = not stuck.done()
        finally:
            holder.rollback()
            holder.close()
        return still_waiting, unrelated, await stuck

    statements.open()
    batcher.start()
    try:
        still_waiting, unrelated, made = asyncio.run(meanwhile())
    finally:
        batcher.stop()
        statements.close()
    assert still_waiting
    assert isinstance(unrelated, Outcome) and unrelated.value is not None
    # The transfer that timed out waiting for the lock was made once the lock was released.
    assert isinstance(made, Outcome) and made.value is not None
    assert posted(sessions, locked) == 900


def test_a_key_given_twice_in_one_call_is_refused(
    factory: Factory,
    sessions: sessionmaker[Session],
    catalogue: Catalogue,
    connection: psycopg.Connection[Any],
) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    account = factory.fund(alice, "USD", 1_000)
    twice = [keyed(factory, alice, bob, 100, "k"), keyed(factory, alice, bob, 100, "k")]
    with pytest.raises(psycopg.Error) as raised:
        transfers_once(connection, twice, catalogue)
    assert raised.value.sqlstate == "WL005"
    assert posted(sessions, account) == 1_000


def test_a_retry_right_after_a_refusal_is_refused_the_same_way(
    factory: Factory, catalogue: Catalogue, connection: psycopg.Connection[Any]
) -> None:
    alice, bob = factory.wallet(), factory.wallet()
    factory.fund(alice, "USD", 100)
    too_much = keyed(factory, alice, bob, 150, "k")
    (refused,) = transfers_once(connection, [too_much], catalogue)
    # Enough money now, but the key's answer was given: the refusal was stored with it.
    factory.fund(alice, "USD", 100)
    (again,) = transfers_once(connection, [too_much], catalogue)
    assert isinstance(refused, Outcome) and isinstance(again, Outcome)
    assert (again.problem, again.replayed) == (refused.problem, True)
    with pytest.raises(InsufficientFunds):
        again.unwrap()
