"""Engines, sessions, the unit of work, migrations, and retries of conflicting transactions."""

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
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

# SQLSTATEs of transactions that lost a race and may simply be run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """An engine for `postgresql+psycopg` URLs (plain `postgresql://` is accepted too)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


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


# Long enough for the batches of other processes that lock the same accounts (a few ms each),
# short enough that the requests queued behind one that needs a row locked for seconds are
# answered within 200 ms.
STATEMENT_LOCK_TIMEOUT = "50ms"


def statement_pool(engine: Engine, size: int) -> ConnectionPool:
    """Plain psycopg connections in autocommit mode, for hot paths whose work is a single
    statement (an API key lookup, a whole transfer): no ORM, no BEGIN and COMMIT round trips.
    A statement gives up after waiting `STATEMENT_LOCK_TIMEOUT` for a lock (SQLSTATE 55P03),
    so that a row locked elsewhere holds up only the statements that need it
    (`wallet.batching`).

    It is opened and closed by its owner (`open()`, `close()`).
    """
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        kwargs={"autocommit": True, "options": f"-c lock_timeout={STATEMENT_LOCK_TIMEOUT}"},
        open=False,
        name="statements",
    )


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; the schema comes only from migrations."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("wallet") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
