"""Session-wide fixtures: one migrated PostgreSQL database for each test process.

`WALLET_TEST_DATABASE_URL` names a server to use (CI points it at the machine's PostgreSQL);
without it the tests start the embedded PostgreSQL from PyPI. Each process (each xdist worker)
gets a fresh database of its own, named by its pid; tests isolate themselves by creating their
own tenant and wallets.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import Factory
from wallet.assets.service import Catalogue, load_catalogue, store_catalogue
from wallet.database import make_engine, make_session_factory, migrate, unit_of_work
from wallet.embedded_postgres import start_embedded_postgres

pytest_plugins = [
    "tests.devnet_fixtures",
    "tests.api_fixtures",
    "tests.webhook_fixtures",
    "tests.fake_bank",
    "tests.bank_stack",
    "tests.hypothesis_profiles",
]

TEST_DATABASE = f"wallet_test_{os.getpid()}"


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An administrative URL of the PostgreSQL server the tests run against."""
    configured = os.environ.get("WALLET_TEST_DATABASE_URL")
    if configured:
        return configured
    return start_embedded_postgres(Path(tmp_path_factory.mktemp("embedded")))


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}"')
        admin.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
    yield make_url(server_url).set(database=TEST_DATABASE).render_as_string(hide_password=False)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="session")
def engine(database_url: str, catalogue: Catalogue) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=20)
    migrate(engine)
    with unit_of_work(make_session_factory(engine)) as session:
        store_catalogue(session, catalogue)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def factory(sessions: sessionmaker[Session], catalogue: Catalogue) -> Factory:
    """Test data for one test: its own tenant, wallets and funding."""
    return Factory(sessions, catalogue)


@pytest.fixture
def connection(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain psycopg connection in autocommit mode, as the API's hot paths use."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection
