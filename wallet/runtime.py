"""Composition at process start: settings -> database, catalogue."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from wallet.assets.service import Catalogue, load_catalogue
from wallet.database import make_engine, make_session_factory
from wallet.embedded_postgres import start_embedded_postgres
from wallet.settings import Settings


@dataclass(frozen=True)
class Runtime:
    """What every process works with, built once by its entry point."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    catalogue: Catalogue


def database_url(settings: Settings) -> str:
    """The configured database, or the embedded one started on demand."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return start_embedded_postgres(settings.data_dir)


def build_runtime(settings: Settings) -> Runtime:
    engine = make_engine(
        database_url(settings),
        pool_size=settings.database_pool_size,
        timeout=settings.database_timeout,
    )
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        catalogue=load_catalogue(settings.assets_file),
    )


@contextmanager
def open_runtime(settings: Settings) -> Iterator[Runtime]:
    """A runtime for a command that ends: its connections are closed when it is done."""
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.engine.dispose()
