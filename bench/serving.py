"""What the HTTP benchmarks share: the API under uvicorn, an API key, a lean HTTP client, and
progress lines on stderr."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from wallet.apikeys.models import Scope
from wallet.apikeys.service import create_key
from wallet.database import make_engine, make_session_factory, run_transaction
from wallet.embedded_postgres import start_embedded_postgres


def progress(stage: str, result: Mapping[str, Any]) -> None:
    print(f"{stage}: {json.dumps(result)}", file=sys.stderr, flush=True)


def api_key(url: str, tenant: str, scopes: Iterable[Scope]) -> str:
    """A new key of `tenant` with `scopes`; returns its secret."""
    engine = make_engine(url, pool_size=1)
    secret = run_transaction(
        make_session_factory(engine),
        lambda s: create_key(s, tenant, list(scopes), label="bench").secret,
    )
    engine.dispose()
    return secret


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def api_server(
    database_url: str, workers: int, settings: Mapping[str, str] | None = None
) -> Iterator[int]:
    """`wallet serve` with `workers` processes (and `settings`, more `WALLET_*` variables);
    yields its port."""
    port = free_port()
    env = {
        **os.environ,
        "WALLET_DATABASE_URL": database_url,
        "WALLET_DATA_DIR": tempfile.mkdtemp(prefix="wallet-bench-api-"),
        "WALLET_API_HOST": "127.0.0.1",
        "WALLET_API_PORT": str(port),
        "WALLET_API_WORKERS": str(workers),
        **(settings or {}),
    }
    command = [sys.executable, "-m", "wallet", "serve", "--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(command, env=env)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_ready(base_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("the API did not start")


def post_head(port: int, path: str, secret: str, body: bytes) -> str:
    """The head of a JSON POST to the API with its own `Idempotency-Key`."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {secret}\r\nIdempotency-Key: {uuid.uuid4()}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )


class Connection:
    """One keep-alive HTTP/1.1 connection that posts requests.

    The load generator speaks HTTP itself: on this 2-core machine httpx spends about as much
    CPU per request as the server does, which would measure the client, not the API.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> "Connection":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, head: str, body: bytes) -> tuple[int, bytes]:
        """Send one request and read its whole answer; returns the status code and body."""
        self.writer.write(head.encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def database_server() -> str:
    """WALLET_BENCH_DATABASE_URL (an administrative URL), or an embedded PostgreSQL's."""
    return os.environ.get("WALLET_BENCH_DATABASE_URL") or start_embedded_postgres(
        Path(tempfile.mkdtemp(prefix="wallet-bench-"))
    )


def wait_for_status(
    url: str, table: str, status: str, count: int, *, timeout: float, key: str = "id"
) -> dict[str, float]:
    """Wait until `count` rows of `table` are in `status` (showing each change of the counts
    by status); returns when (epoch seconds) each row last changed, by its `key` column."""
    engine = make_engine(url, pool_size=1)
    sessions = make_session_factory(engine)
    deadline = time.monotonic() + timeout
    last: dict[str, int] = {}
    try:
        while True:
            counts = run_transaction(
                sessions,
                lambda s: dict(
                    s.execute(text(f"SELECT status, count(*) FROM {table} GROUP BY status")).all()
                ),
            )
            if counts != last:
                progress("statuses", counts)
                last = counts
            if counts.get(status, 0) == count:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all {table} {status} in {timeout} s: {counts}")
            time.sleep(0.1)
        rows = run_transaction(
            sessions,
            lambda s: s.execute(text(f"SELECT {key} AS key, updated_at FROM {table}")).all(),
        )
    finally:
        engine.dispose()
    return {row.key: row.updated_at.timestamp() for row in rows}
