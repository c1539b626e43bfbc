"""Statements of concurrent requests go to the database together, one per batch.

Requests wait in a queue while a batch is in the database; a thread then sends whatever has
gathered as the next batch, in one statement. Batches grow with the load and a lone request
goes at once, so nothing waits on a timer. Each request still gets its own answer: a batch
only shares the round trip, the statement and, for writes, the commit.

A statement that waits too long for a row lock (the pool's `lock_timeout`) must not hold up
the requests behind it: its items are tried again alone, and one that still waits is sent
again, with no time limit on its lock waits, from a second thread, where such items wait in
turn while the first thread goes on with the others.

`OneBatchAtATime` batches work that is not one statement (pay-in requests: their records,
one call to the bank for all of them, its answers): one batch at a time per process, each
on a worker thread, the items that come meanwhile going together in the next.
"""

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from wallet.database import database_unavailable, retrying

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Answer = TypeVar("Answer")

# Makes a batch in one statement on an autocommit connection: one answer per item, in order.
BatchStatement = Callable[[psycopg.Connection[Any], Sequence[Item]], Sequence[Answer]]


@dataclass(frozen=True)
class _Waiting(Generic[Item, Answer]):
    item: Item
    loop: asyncio.AbstractEventLoop
    answer: "asyncio.Future[Answer]"


class Batcher(Generic[Item, Answer]):
    """Runs `statement` for the items of one process's requests, in batches, on one thread.

    Items whose `apart` values are equal never share a batch (two uses of one idempotency
    key, say). If a batch fails as a whole, each of its items is tried alone, so that one
    item's failure is its own; if the database cannot be reached, they all fail at once. An
    item that alone times out waiting for a lock is sent again from the second thread, where
    its statement waits for locks as long as it takes. A connection lost under a batch (a
    database restart) is replaced and the batch sent again, once: the statements must be safe
    to repeat (reads, or writes under idempotency keys).
    """

    def __init__(
        self,
        name: str,
        pool: ConnectionPool,
        statement: BatchStatement[Item, Answer],
        *,
        apart: Callable[[Item], Hashable] | None = None,
        max_batch: int = 100,
    ) -> None:
        self._pool = pool
        self._statement = statement
        self._apart = apart
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Waiting[Item, Answer] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._locked: queue.SimpleQueue[_Waiting[Item, Answer] | None] = queue.SimpleQueue()
        self._locked_thread = threading.Thread(
            target=self._run_locked, name=f"{name}-locked", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        self._locked_thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()
        self._locked.put(None)
        self._locked_thread.join()

    async def submit(self, item: Item) -> Answer:
        """The item's answer; raises what the database raised for it."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting[Item, Answer](item, loop, loop.create_future())
        self._queue.put(waiting)
        return await waiting.answer

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    waiting = self._queue.get_nowait()
                except queue.Empty:
                    break
                if waiting is None:
                    stopping = True
                    break
                batch.append(waiting)
            for part in self._parts(batch):
                self._send(part)

    def _parts(self, batch: list[_Waiting[Item, Answer]]) -> list[list[_Waiting[Item, Answer]]]:
        """The batch in parts in which no two items must be apart, in order."""
        apart = self._apart
        if apart is None:
            return [batch]
        parts: list[tuple[set[Hashable], list[_Waiting[Item, Answer]]]] = []
        for waiting in batch:
            value = apart(waiting.item)
            part = next((part for part in parts if value not in part[0]), None)
            if part is None:
                part = (set(), [])
                parts.append(part)
            part[0].add(value)
            part[1].append(waiting)
        return [members for _, members in parts]

    def _send(self, batch: Sequence[_Waiting[Item, Answer]]) -> None:
        items = [waiting.item for waiting in batch]
        try:
            answers = self._answers(items)
        except psycopg.errors.LockNotAvailable:
            # The statement left nothing behind. The items that don't wait for that lock go
            # on now; the one that does waits on the other thread.
            if len(batch) > 1:
                for waiting in batch:
                    self._send([waiting])
            else:
                self._locked.put(batch[0])
            return
        except Exception as error:
            unavailable = database_unavailable(error)
            # An item may have failed the statement: try each alone. Not when the database
            # could not be reached: alone, each would only wait for it again.
            if len(batch) > 1 and not unavailable:
                for waiting in batch:
                    self._send([waiting])
                return
            if unavailable:
                logger.warning("a batch failed: the database is unavailable: %s", error)
                # What came meanwhile would only wait as long again: it fails with the batch.
                batch = [*batch, *self._queued()]
            else:
                logger.exception("a batched statement failed")
            for waiting in batch:
                waiting.loop.call_soon_threadsafe(_fail, waiting.answer, error)
            return
        for waiting, answer in zip(batch, answers, strict=True):
            waiting.loop.call_soon_threadsafe(_answer, waiting.answer, answer)

    def _queued(self) -> list[_Waiting[Item, Answer]]:
        """Take what waits in the queue now; a stop request stays queued."""
        taken: list[_Waiting[Item, Answer]] = []
        while True:
            try:
                waiting = self._queue.get_nowait()
            except queue.Empty:
                return taken
            if waiting is None:
                self._queue.put(None)
                return taken
            taken.append(waiting)

    def _answers(self, items: Sequence[Item]) -> Sequence[Answer]:
        """The statement's answers; sent again once if the connection was lost under it."""
        with self._pool.connection() as connection:
            try:
                return retrying(lambda: self._statement(connection, items))
            except psycopg.OperationalError as error:
                if not connection.broken:
                    raise
                logger.warning("a pooled connection was lost (%s); checking the others", error)
        # Lost most likely with the pool's idle connections (a database restart): replace
        # them, rather than meet them one batch at a time. The statements are safe to repeat.
        self._pool.check()
        with self._pool.connection() as connection:
            return retrying(lambda: self._statement(connection, items))

    def _run_locked(self) -> None:
        """Send the items that timed out waiting for a lock, one at a time, with no timeout."""
        while (waiting := self._locked.get()) is not None:
            try:
                with self._pool.connection() as connection:
                    answer = retrying(partial(self._waiting_for_locks, connection, waiting.item))
            except Exception as error:
                logger.exception("a statement waiting for a lock failed")
                waiting.loop.call_soon_threadsafe(_fail, waiting.answer, error)
            else:
                waiting.loop.call_soon_threadsafe(_answer, waiting.answer, answer)

    def _waiting_for_locks(self, connection: psycopg.Connection[Any], item: Item) -> Answer:
        with connection.transaction():
            connection.execute("SET LOCAL lock_timeout = 0")
            (answer,) = self._statement(connection, [item])
        return answer


class OneBatchAtATime(Generic[Item, Answer]):
    """Runs `work` on a worker thread for the items of one process's requests, one batch at a
    time: the items that come while a batch runs wait, and go together in the next (up to
    `max_batch`, in order of arrival). An item still waiting after `max_wait` s is refused
    with the error `expired()` makes, its work not started. `work` answers each item, in
    order, with its answer or the error to raise for it; an error raised by `work` itself is
    every item's of the batch. Used on one event loop.
    """

    def __init__(
        self,
        work: Callable[[list[Item]], Sequence[Answer | Exception]],
        *,
        max_batch: int,
        max_wait: float,
        expired: Callable[[], Exception],
    ) -> None:
        self._work = work
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._expired = expired
        self._waiting: deque[tuple[Item, asyncio.Future[Answer]]] = deque()
        self._draining: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Answer:
        """The item's answer, once its batch has run; raises the item's error."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Answer] = loop.create_future()
        entry = (item, answer)
        self._waiting.append(entry)
        timer = loop.call_later(self._max_wait, self._expire, entry)
        if self._draining is None:
            self._draining = loop.create_task(self._drain())
        try:
            return await answer
        finally:
            timer.cancel()

    def _expire(self, entry: tuple[Item, "asyncio.Future[Answer]"]) -> None:
        if entry in self._waiting:
            self._waiting.remove(entry)
            entry[1].set_exception(self._expired())

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch: list[tuple[Item, asyncio.Future[Answer]]] = []
                while self._waiting and len(batch) < self._max_batch:
                    entry = self._waiting.popleft()
                    if not entry[1].done():  # not given up on by its request
                        batch.append(entry)
                if batch:
                    await self._run(batch)
        finally:
            self._draining = None

    async def _run(self, batch: list[tuple[Item, "asyncio.Future[Answer]"]]) -> None:
        try:
            answers = await asyncio.to_thread(self._work, [item for item, _ in batch])
        except Exception as error:
            logger.exception("a batch failed")
            answers = [error] * len(batch)
        for (_, future), answer in zip(batch, answers, strict=True):
            if future.done():
                continue
            if isinstance(answer, Exception):
                future.set_exception(answer)
            else:
                future.set_result(answer)


def _answer(future: "asyncio.Future[Answer]", answer: Answer) -> None:
    if not future.cancelled():
        future.set_result(answer)


def _fail(future: "asyncio.Future[Any]", error: Exception) -> None:
    if not future.cancelled():
        future.set_exception(error)
