"""The batchers: concurrent items share statements (or a batch of work), keep their own
answers and failures."""

import asyncio
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from wallet.batching import Batcher, OneBatchAtATime


@pytest.fixture
def pool(database_url: str) -> Iterator[ConnectionPool]:
    with ConnectionPool(database_url, min_size=1, max_size=2, kwargs={"autocommit": True}) as pool:
        yield pool


class Doubler:
    """Doubles numbers in the database, one statement per batch; 13 makes a statement fail."""

    def __init__(self, unreachable: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.unreachable = unreachable

    def __call__(self, connection: psycopg.Connection[Any], items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        if self.unreachable:
            raise psycopg.OperationalError("the database went away")
        rows = connection.execute(
            "SELECT 2 * n + 0 / (n - 13) FROM unnest(%s::int[]) AS n", (list(items),)
        ).fetchall()
        return [row[0] for row in rows]


def run(batcher: Batcher[int, int], items: Sequence[int]) -> list[int | BaseException]:
    """Submit all items, then start the batcher: its first batch holds them all."""

    async def submit_all() -> list[int | BaseException]:
        answers = [asyncio.ensure_future(batcher.submit(item)) for item in items]
        await asyncio.sleep(0)
        batcher.start()
        return await asyncio.gather(*answers, return_exceptions=True)

    try:
        return asyncio.run(submit_all())
    finally:
        batcher.stop()


def test_items_submitted_together_share_statements(pool: ConnectionPool) -> None:
    doubler = Doubler()
    answers = run(Batcher("doubler", pool, doubler), list(range(50)))
    assert answers[:13] == [2 * n for n in range(13)]
    assert isinstance(answers[13], psycopg.errors.DivisionByZero)
    assert answers[14:] == [2 * n for n in range(14, 50)]
    # The statement fails with 13 in it; its items are then tried one by one.
    assert doubler.batches == [list(range(50))] + [[n] for n in range(50)]


def test_items_that_must_be_apart_never_share_a_batch(pool: ConnectionPool) -> None:
    doubler = Doubler()
    answers = run(Batcher("doubler", pool, doubler, apart=lambda n: n % 3), [1, 4, 7, 2, 5])
    assert answers == [2, 8, 14, 4, 10]
    assert doubler.batches == [[1, 2], [4, 5], [7]]


def test_when_the_database_is_unreachable_a_batch_fails_at_once(pool: ConnectionPool) -> None:
    doubler = Doubler(unreachable=True)
    answers = run(Batcher("doubler", pool, doubler), [1, 2, 3])
    assert all(isinstance(answer, psycopg.OperationalError) for answer in answers)
    assert doubler.batches == [[1, 2, 3]]


class Locker:
    """Takes an advisory lock per number, then doubles them, one statement per batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __call__(self, connection: psycopg.Connection[Any], items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        rows = connection.execute(
            "SELECT 2 * n FROM unnest(%s::int[]) AS n, LATERAL pg_advisory_xact_lock(n)",
            (list(items),),
        ).fetchall()
        return [row[0] for row in rows]


def test_an_item_waiting_for_a_lock_holds_up_no_other(database_url: str) -> None:
    locker = Locker()
    with (
        ConnectionPool(
            database_url,
            min_size=1,
            max_size=2,
            kwargs={"autocommit": True, "options": "-c lock_timeout=50ms"},
        ) as pool,
        psycopg.connect(database_url) as holder,
    ):
        holder.execute("SELECT pg_advisory_xact_lock(13)")
        batcher = Batcher("locker", pool, locker)

        async def meanwhile() -> list[int | BaseException]:
            answers = [asyncio.ensure_future(batcher.submit(n)) for n in (1, 13, 2)]
            await asyncio.sleep(0)
            batcher.start()
            # Answered while 13 is still locked; 13 waits for it on the batcher's second thread.
            others = await asyncio.wait_for(asyncio.gather(answers[0], answers[2]), timeout=20)
            assert not answers[1].done()
            holder.rollback()
            return [*others, await answers[1]]

        try:
            assert asyncio.run(meanwhile()) == [2, 4, 26]
        finally:
            holder.rollback()
            batcher.stop()
    # The batch timed out; each item was tried alone; 13, timed out again, waited (the two
    # threads may interleave).
    assert locker.batches[0] == [1, 13, 2]
    assert sorted(locker.batches[1:]) == [[1], [2], [13], [13]]


class Gate:
    """Work that records its batches and doubles each item; 13 is refused (its error is its
    answer), and the first batch waits until `opened`."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.opened = threading.Event()

    def __call__(self, items: list[int]) -> list[int | Exception]:
        self.opened.wait(timeout=10)
        self.batches.append(items)
        if 0 in items:
            raise RuntimeError("the work failed as a whole")
        return [ValueError(n) if n == 13 else 2 * n for n in items]


def batches_of(gate: Gate, **kwargs: Any) -> OneBatchAtATime[int, int]:
    options: dict[str, Any] = {"max_batch": 100, "max_wait": 5.0, "expired": TimeoutError}
    return OneBatchAtATime(gate, **{**options, **kwargs})


async def _answers(futures: list["asyncio.Future[int]"]) -> list[int | BaseException]:
    return list(await asyncio.gather(*futures, return_exceptions=True))


def test_items_that_come_while_a_batch_runs_go_together_in_the_next() -> None:
    gate = Gate()
    batches = batches_of(gate, max_batch=3)

    async def scenario() -> list[int | BaseException]:
        first = asyncio.ensure_future(batches.submit(1))
        await asyncio.sleep(0.05)  # its batch is running, held at the gate
        rest = [asyncio.ensure_future(batches.submit(n)) for n in (2, 3, 13, 5)]
        await asyncio.sleep(0.05)
        gate.opened.set()
        return await _answers([first, *rest])

    answers = asyncio.run(scenario())
    assert answers[:3] == [2, 4, 6]
    assert isinstance(answers[3], ValueError)
    assert answers[4] == 10
    assert gate.batches == [[1], [2, 3, 13], [5]]


def test_an_item_waiting_longer_than_its_limit_is_refused_and_never_run() -> None:
    gate = Gate()
    batches = batches_of(gate, max_wait=0.2)

    async def scenario() -> list[int | BaseException]:
        first = asyncio.ensure_future(batches.submit(1))
        await asyncio.sleep(0.05)
        late = asyncio.ensure_future(batches.submit(2))
        await asyncio.sleep(0.4)  # longer than `late` may wait
        gate.opened.set()
        return await _answers([first, late])

    first, late = asyncio.run(scenario())
    assert first == 2
    assert isinstance(late, TimeoutError)
    assert gate.batches == [[1]]


def test_work_that_fails_as_a_whole_fails_its_batch_only() -> None:
    gate = Gate()
    gate.opened.set()
    batches = batches_of(gate)

    async def scenario() -> list[int | BaseException]:
        failed = await _answers([asyncio.ensure_future(batches.submit(n)) for n in (0, 1)])
        return [*failed, await batches.submit(4)]

    answers = asyncio.run(scenario())
    assert [type(a) for a in answers[:2]] == [RuntimeError, RuntimeError]
    assert answers[2] == 8
