"""Tests rolled back: an area whose tests touch only the database imports `sessions` from here
into its conftest. Its tests then write through one connection whose transaction is rolled
back after each test: every unit of work commits to a savepoint of it, and nothing a test wrote
outlives it. Tests marked `committed` (threads with connections of their own) use the
session's committed sessions instead."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker


@pytest.fixture
def sessions(
    request: pytest.FixtureRequest, engine: Engine, sessions: sessionmaker[Session]
) -> Iterator[sessionmaker[Session]]:
    if request.node.get_closest_marker("committed"):
        yield sessions
        return
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield sessionmaker(
                connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
            )
        finally:
            transaction.rollback()
