"""The retry of a request's work that lost a race to another transaction."""

import psycopg.errors
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from wallet.api.dependencies import retry_lost_races


def lost_race(error: psycopg.Error) -> DBAPIError:
    return DBAPIError.instance("SELECT 1", {}, error, psycopg.Error)


def test_work_that_lost_a_race_runs_again_in_a_fresh_transaction(
    sessions: sessionmaker[Session],
) -> None:
    attempts: list[int] = []

    def work(session: Session) -> int:
        backend = int(session.execute(text("SELECT txid_current()")).scalar_one())
        attempts.append(backend)
        if len(attempts) == 1:
            raise lost_race(psycopg.errors.DeadlockDetected("deadlock detected"))
        return backend

    with sessions() as session:
        assert retry_lost_races(session, lambda: work(session)) == attempts[-1]
    assert len(attempts) == 2
    assert attempts[0] != attempts[1]


def test_other_database_errors_are_not_retried(sessions: sessionmaker[Session]) -> None:
    calls: list[None] = []

    def work() -> None:
        calls.append(None)
        raise lost_race(psycopg.errors.UniqueViolation("duplicate key"))

    with sessions() as session, pytest.raises(DBAPIError):
        retry_lost_races(session, work)
    assert len(calls) == 1
