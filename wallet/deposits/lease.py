"""One active watcher per chain: a PostgreSQL advisory lock held on a dedicated connection.

The lock belongs to the connection's session, so it is released the moment the holder's
connection ends: when the process exits, is killed, or loses the database. A waiting watcher
polls for it and takes over then. Each step also fences its writes with the chain's cursor
(see `wallet.deposits.watcher`), so even a holder that lost its lease without noticing cannot
write over its successor's work.
"""

import logging
import threading

import psycopg
from sqlalchemy import Engine

from wallet.deposits.errors import LeaseLost

logger = logging.getLogger(__name__)

_LOCK_NAMESPACE = "wallet.deposits.watcher:"


class ChainLease:
    """The right to follow one chain, exclusive across processes and machines."""

    def __init__(self, conninfo: str, chain: str) -> None:
        self._conninfo = conninfo
        self._chain = chain
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None

    @classmethod
    def for_engine(cls, engine: Engine, chain: str) -> "ChainLease":
        """A lease on the engine's database (its own connection, outside the engine's pool)."""
        url = engine.url.set(drivername="postgresql")
        return cls(url.render_as_string(hide_password=False), chain)

    @property
    def held(self) -> bool:
        return self._connection is not None

    def acquire(self, stop: threading.Event, retry_interval: float = 1.0) -> bool:
        """Wait until the lease is ours (True) or `stop` is set (False)."""
        waited = False
        while not stop.is_set():
            try:
                if self._try_acquire():
                    if waited:
                        logger.info("%s: lease taken over; this watcher is now active", self._chain)
                    return True
                if not waited:
                    logger.info(
                        "%s: another watcher holds the lease; waiting to take over", self._chain
                    )
                    waited = True
            except psycopg.OperationalError as error:
                logger.warning(
                    "%s: cannot reach the database for the lease: %s", self._chain, error
                )
                self.release()
            stop.wait(retry_interval)
        return False

    def check(self) -> None:
        """Raise LeaseLost unless the lease connection is still alive (and so the lock ours)."""
        connection = self._connection
        if connection is None:
            raise LeaseLost(f"{self._chain}: the lease is not held")
        try:
            connection.execute("SELECT 1")
        except psycopg.Error as error:
            self.release()
            raise LeaseLost(f"{self._chain}: the lease connection broke: {error}") from error

    def release(self) -> None:
        """Give the lease up (closing the connection releases the lock)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except psycopg.Error:
                logger.debug("closing a broken lease connection failed", exc_info=True)

    def _try_acquire(self) -> bool:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(
                self._conninfo,
                autocommit=True,
                application_name=f"wallet-watch:{self._chain}",
                # Notice a silently dead server (no FIN) within about 20 s.
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=3,
                keepalives_count=3,
                connect_timeout=5,
            )
        row = self._connection.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
            (_LOCK_NAMESPACE + self._chain,),
        ).fetchone()
        return bool(row and row[0])
