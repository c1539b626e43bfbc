"""`wallet reconcile` reports every invariant and fails on a violation."""

import os
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import make_url, text
from typer.testing import CliRunner

from tests.factories import Factory
from wallet.assets.service import Catalogue, store_catalogue
from wallet.cli import app
from wallet.database import make_engine, make_session_factory, migrate, unit_of_work

DATABASE = f"wallet_reconcile_{os.getpid()}"


@pytest.fixture
def own_database(server_url: str, catalogue: Catalogue) -> Iterator[str]:
    """A database of its own: this test breaks an invariant on purpose."""
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    url = make_url(server_url).set(database=DATABASE).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate(engine)
    with unit_of_work(make_session_factory(engine)) as session:
        store_catalogue(session, catalogue)
    engine.dispose()
    yield url
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def test_reconcile_passes_then_reports_a_broken_balance(
    own_database: str, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(own_database)
    sessions = make_session_factory(engine)
    factory = Factory(sessions, catalogue)
    account = factory.fund(factory.wallet(), "USD", 500)
    monkeypatch.setenv("WALLET_DATABASE_URL", own_database)

    healthy = CliRunner().invoke(app, ["reconcile"])
    assert healthy.exit_code == 0, healthy.output
    assert "FAIL" not in healthy.output

    with unit_of_work(sessions) as session:
        session.execute(text("UPDATE accounts SET posted = 400 WHERE id = :a"), {"a": account})
    engine.dispose()
    broken = CliRunner().invoke(app, ["reconcile"])
    assert broken.exit_code == 1
    assert "FAIL every balance equals the sum of its postings" in broken.output
    assert f"account {account} posted 400 but postings sum to 500" in broken.output
