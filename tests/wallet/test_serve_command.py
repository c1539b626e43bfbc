"""`wallet serve` with several processes: each on a socket of its own sharing the port, so
connections spread over them; one that dies is started again."""

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import Engine

from tests.api_fixtures import api_environment, free_port


def test_connections_spread_over_the_processes_and_one_that_dies_is_started_again(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    with _serving(database_url, tmp_path, port, workers=2) as serve:
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for _ in range(32)]
        try:
            assert {client.get("/healthz").status_code for client in clients} == {200}
            workers = serve.children()
            held = {worker.pid: _connections_on(worker, port) for worker in workers}
            # Each of the 32 kept-alive connections is held by one of the two processes.
            assert len(held) == 2 and sum(held.values()) == 32
            assert min(held.values()) > 0, held

            killed = workers[0]
            killed.kill()
            killed.wait(timeout=10)
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            _wait_until(lambda: len(_serving_pids(serve, port) - {killed.pid}) == 2, 30)
            assert "api-0 exited (-9); restarting" in (tmp_path / "serve.log").read_text()
        finally:
            for client in clients:
                client.close()
    assert not any(worker.is_running() for worker in workers[1:])


@contextmanager
def _serving(
    database_url: str, data_dir: Path, port: int, workers: int
) -> Iterator[psutil.Process]:
    environment = {
        **os.environ,
        **api_environment(database_url, data_dir),
        "WALLET_API_HOST": "127.0.0.1",
        "WALLET_API_PORT": str(port),
        "WALLET_API_WORKERS": str(workers),
    }
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "wallet", "serve", "--no-access-log"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    serve = psutil.Process(process.pid)
    try:
        _wait_until(lambda: len(_serving_pids(serve, port)) == workers, 60, log_path)
        yield serve
    finally:
        process.terminate()
        process.wait(timeout=30)


def _serving_pids(serve: psutil.Process, port: int) -> set[int]:
    """The processes under `serve` that listen on the port and answer."""
    listening = {
        child.pid
        for child in serve.children()
        for connection in _net_connections(child)
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
    }
    try:
        answered = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        answered = False
    return listening if answered else set()


def _connections_on(process: psutil.Process, port: int) -> int:
    return sum(
        1
        for connection in _net_connections(process)
        if connection.status == psutil.CONN_ESTABLISHED and connection.laddr.port == port
    )


def _net_connections(process: psutil.Process) -> list[Any]:
    try:
        return process.net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return []


def _wait_until(condition: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, log.read_text() if log else "timed out"
        time.sleep(0.2)
