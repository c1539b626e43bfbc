"""kombu's SQL transport (the embedded profile's broker), made to outlive a database restart.

kombu's own transport keeps one session per channel and counts only SQLAlchemy's
`OperationalError` as a connection error, so after a restart the worker's consumer restarts
in a tight loop (Celery gives up with `RestartFreqExceeded`) and beat keeps publishing on a
closed channel for ever. Here every database failure, and a closed channel, is a recoverable
connection error, so kombu reconnects and revives its producers and consumers; connecting
waits for the database to answer, so a reconnection neither succeeds nor spins while it
does not; and a failed channel's session is discarded. kombu creates its tables and queues
guarded by a lock of its process only: here processes starting together take a PostgreSQL
advisory lock for it, and a queue another process created first is used, not an error.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from amqp import RecoverableConnectionError
from kombu.transport import sqlalchemy as kombu_sql
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

# Seconds a connection attempt waits for the database to answer.
DATABASE_WAIT = 5.0

_DATABASE_ERRORS = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.PendingRollbackError)

# The advisory lock that processes take to create kombu's tables and queues one at a time.
_SCHEMA_LOCK = 0x6B6F6D6275  # "kombu"


@contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """Hold the advisory lock, on a connection of its own, for the block."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK})
            yield
    finally:
        engine.dispose()


class Channel(kombu_sql.Channel):
    """A channel whose session is dropped after a database failure and when it closes."""

    def _open(self) -> Any:
        url = self.connection.client.hostname
        if url in self._engines:
            return super()._open()
        with _schema_lock(url):
            return super()._open()

    def _get_or_create(self, queue: Any) -> Any:
        if queue_row := self._find_queue(queue):
            return queue_row
        with _schema_lock(self.connection.client.hostname):
            return super()._get_or_create(queue)

    def _find_queue(self, queue: Any) -> Any:
        return self.session.query(self.queue_cls).filter(self.queue_cls.name == queue).first()

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        with self._dropping_session_on_failure():
            return super()._get(queue)

    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        with self._dropping_session_on_failure():
            return super()._put(queue, payload, **kwargs)

    def _size(self, queue: Any) -> Any:
        with self._dropping_session_on_failure():
            return super()._size(queue)

    @contextmanager
    def _dropping_session_on_failure(self) -> Iterator[None]:
        try:
            yield
        except _DATABASE_ERRORS:
            self.drop_session()
            raise

    def drop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                session.close()
            except sa_exc.SQLAlchemyError:
                session.invalidate()

    def close(self) -> None:
        self.drop_session()
        super().close()

    def check_database(self) -> None:
        """Raise a connection error unless the database answers."""
        engine, _ = self._open()
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))


class Transport(kombu_sql.Transport):
    """kombu's SQL transport, with the channel above and every database failure recoverable."""

    Channel = Channel
    # A channel closed by an earlier failure raises RecoverableConnectionError.
    connection_errors = (*_DATABASE_ERRORS, RecoverableConnectionError)  # type: ignore[assignment]
    recoverable_connection_errors = connection_errors

    def establish_connection(self) -> Any:
        """Connect once the database answers, waiting a few seconds for it: kombu's own
        pauses between attempts grow (2 s, 4 s, ... 30 s), so a database back during one of
        them would wait it out."""
        connection = super().establish_connection()
        channel = self._avail_channels[-1]
        deadline = time.monotonic() + DATABASE_WAIT
        while True:
            try:
                channel.check_database()
            except _DATABASE_ERRORS:
                if time.monotonic() < deadline:
                    time.sleep(0.25)
                    continue
                self._avail_channels.remove(channel)
                channel.close()
                raise
            return connection
