"""Engines, sessions, the unit of work, migrations, and retries of conflicting transactions."""

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TypeVar

from alembic import command
from alembic.config import Config
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
    for attempt in range(1, attempts + 1):
        try:
            with unit_of_work(sessions) as session:
                return work(session)
        except DBAPIError as error:
            if attempt == attempts or sqlstate(error) not in RETRYABLE_SQLSTATES:
                raise
            time.sleep(random.uniform(0, 0.002 * 2**attempt))  # noqa: S311 - jitter, not crypto
    raise AssertionError("unreachable")


def sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; the schema comes only from migrations."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("wallet") / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
