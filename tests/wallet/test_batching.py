"""The batcher: concurrent items share statements, keep their own answers and failures."""

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from wallet.batching import Batcher


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
