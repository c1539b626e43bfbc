"""Engines, sessions, the unit of work, migrations, retries of conflicting transactions, and
telling a database that cannot be reached from one that refused a statement."""

import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TypeVar

import psycopg
from alembic import command
from alembic.config import Config
from psycopg_pool import ConnectionPool
from sqlalchemy import Connection, Engine, create_engine, make_url
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

# SQLSTATEs of transactions that lost a race and may simply be run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

# SQLSTATEs of a server that is going away or not yet back: shutting down, crashed, starting
# up or recovering, out of connection slots.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})

# Seconds to wait for a connection when nothing else is said: a free one from a pool, or a
# new one from the server.
DEFAULT_TIMEOUT = 30.0


def make_engine(url: str, pool_size: int = 10, timeout: float = DEFAULT_TIMEOUT) -> Engine:
    """An engine for `postgresql+psycopg` URLs (plain `postgresql://` is accepted too).

    A pooled connection is pinged before use, so connections broken by a database restart
    are replaced; getting one (free in the pool, or new) fails after about `timeout` seconds.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=timeout,
        connect_args={"connect_timeout": _connect_timeout(timeout)},
    )


def _connect_timeout(timeout: float) -> int:
    # libpq counts whole seconds and waits at least 2.
    return max(2, math.ceil(timeout))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One database transaction: committed if the block succeeds, rolled back otherwise."""
    with sessions() as session, session.begin():
        yield session


def run_transaction(
    sessions: sessionmaker[Session], work: Callable[[Session], T], attempts: int = 8
) -> T:
    """Run `work` in its own unit of work, again (after a jittered pause) if it lost a race."""

    def attempt() -> T:
        with unit_of_work(sessions) as session:
            return work(session)

    return retrying(attempt, attempts)


def retrying(
    work: Callable[[], T], attempts: int = 8, before_retry: Callable[[], object] | None = None
) -> T:
    """Run `work`, again after a jittered pause while it loses a race (a deadlock or a
    serialization failure), up to `attempts` times; `before_retry` cleans up in between."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except (DBAPIError, psycopg.Error) as error:
            if attempt == attempts or sqlstate(error) not in RETRYABLE_SQLSTATES:
                raise
            if before_retry is not None:
                before_retry()
            time.sleep(random.uniform(0, 0.002 * 2**attempt))  # noqa: S311 - jitter, not crypto
    raise AssertionError("unreachable")


def sqlstate(error: DBAPIError | psycopg.Error) -> str | None:
    """The SQLSTATE of a database error, raised by psycopg or wrapped by SQLAlchemy."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    return getattr(cause, "sqlstate", None)


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` says the database could not be reached (down, restarting, a lost
    connection, no connection free in time), rather than that it refused a statement."""
    if isinstance(error, sa_exc.TimeoutError):
        return True  # no pooled connection came free in time
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    cause = error.orig if isinstance(error, DBAPIError) else error
    if not isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    # Without a SQLSTATE the server never answered: refused, lost or timed out connections,
    # and pool timeouts; class 08 is a connection exception.
    state = cause.sqlstate
    return state is None or state.startswith("08") or state in UNAVAILABLE_SQLSTATES


# Long enough for the batches of other processes that lock the same accounts (a few ms each),
# short enough that the requests queued behind one that needs a row locked for seconds are
# answered within 200 ms.
STATEMENT_LOCK_TIMEOUT = "50ms"


def statement_pool(engine: Engine, size: int, timeout: float = DEFAULT_TIMEOUT) -> ConnectionPool:
    """Plain psycopg connections in autocommit mode, for hot paths whose work is a single
    statement (an API key lookup, a whole transfer): no ORM, no BEGIN and COMMIT round trips.
    A statement gives up after waiting `STATEMENT_LOCK_TIMEOUT` for a lock (SQLSTATE 55P03),
    so that a row locked elsewhere holds up only the statements that need it
    (`wallet.batching`).

    Getting a connection fails after `timeout` seconds. A connection that cannot be made is
    tried again for about `timeout` seconds in the background, then left to the next request
    that needs one: the pool's own retries, ever further apart, would otherwise keep it
    empty long after the database is back. It is opened and closed by its owner (`open()`,
    `close()`).
    """
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        kwargs={
            "autocommit": True,
            "options": f"-c lock_timeout={STATEMENT_LOCK_TIMEOUT}",
            "connect_timeout": _connect_timeout(timeout),
        },
        open=False,
        name="statements",
        timeout=timeout,
        reconnect_timeout=max(timeout, 2.0),
    )


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; the schema comes only from migrations."""
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")


def check_schema(engine: Engine) -> None:
    """`alembic check` on a migrated database: raise if the models, the functions or the
    triggers of wallet/sql/ differ from what the migrations built."""
    with engine.begin() as connection:
        command.check(_alembic_config(connection))


@contextmanager
def scratch_database(server_url: str, name: str) -> Iterator[str]:
    """A new, empty database on the server of `server_url`, dropped when the block ends."""
    with psycopg.connect(_libpq(server_url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(server_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("wallet") / "migrations"))
    config.attributes["connection"] = connection
    return config
