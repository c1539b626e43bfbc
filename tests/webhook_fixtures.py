"""Fixtures of events out: a webhook receiver, a Redis server, and Celery worker processes.

Tests needing Redis use `WALLET_TEST_REDIS_URL` (the CI sets it) or else start their own
`redis-server` on a free port. The broker-down test always starts its own, so it may stop it.
"""

import contextlib
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from chains.devnet import find_free_port
from tests.workers import worker_redis_url
from wallet.database import unit_of_work
from wallet.events.service import emit
from wallet.webhooks.secrets import SecretBox, new_key, parse_key
from wallet.webhooks.service import (
    WebhookDelivery,
    WebhookEndpoint,
    create_endpoint,
    list_deliveries,
)

REPOSITORY = Path(__file__).resolve().parents[3]
TEST_SECRETS_KEY = new_key()
# Refuses connections at once (the discard port): for endpoints a test never delivers to, so
# that worker processes of later tests retrying them are not held up.
NOWHERE = "http://127.0.0.1:9/hooks"


def wait_until(
    condition: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def free_port() -> int:
    return find_free_port()


@pytest.fixture(scope="session")
def secret_box() -> SecretBox:
    return SecretBox(parse_key(TEST_SECRETS_KEY))


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """A real HTTP server that records what it is sent and answers as told, per path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[ReceivedRequest] = []
        self._answers: dict[str, list[int]] = defaultdict(list)
        self._slow: dict[bytes, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = receiver._record(
                    ReceivedRequest(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                time.sleep(receiver._delay(body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{path}"

    def answer(self, path: str, *statuses: int) -> None:
        """Answer the next requests to `path` with these statuses, then with 200."""
        with self._lock:
            self._answers["/" + path].extend(statuses)

    def slow(self, marker: bytes, seconds: float) -> None:
        """Answer each request whose body holds `marker` only after `seconds`."""
        with self._lock:
            self._slow[marker] = seconds

    def _delay(self, body: bytes) -> float:
        with self._lock:
            return max((s for m, s in self._slow.items() if m in body), default=0.0)

    def received(self, path: str | None = None) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self._received if path is None or r.path == "/" + path]

    def _record(self, request: ReceivedRequest) -> int:
        with self._lock:
            self._received.append(request)
            answers = self._answers[request.path]
            return answers.pop(0) if answers else 200

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


def trickle(connection: socket.socket) -> None:
    """Answer a request one byte every 0.4 s, as a receiver that holds its callers does."""
    connection.recv(65536)
    for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-padding: " + b"." * 200:
        connection.sendall(bytes([byte]))
        time.sleep(0.4)


def reset(connection: socket.socket) -> None:
    """Read the request and reset the connection."""
    connection.recv(65536)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def garbage(connection: socket.socket) -> None:
    """Answer something that is not HTTP."""
    connection.recv(65536)
    connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")


@contextlib.contextmanager
def raw_receiver(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A TCP server on 127.0.0.1 handling each connection with `answer`; yields its base URL."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with contextlib.suppress(OSError):  # the client gave up first
                answer(self.request)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class HeldAnswers:
    """Answers 200 to each request only once released; counts the requests it holds."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self._lock = threading.Lock()
        self.held = 0

    def __call__(self, connection: socket.socket) -> None:
        connection.recv(65536)
        with self._lock:
            self.held += 1
        self.released.wait(30)
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")


def add_endpoint(
    sessions: sessionmaker[Session],
    box: SecretBox,
    tenant_id: str,
    url: str,
    event_types: list[str],
) -> tuple[WebhookEndpoint, str]:
    with unit_of_work(sessions) as session:
        return create_endpoint(
            session, tenant_id, url, event_types, secrets=box, allow_private_targets=True
        )


def emit_committed(
    sessions: sessionmaker[Session], tenant_id: str, event_type: str = "transfer.created"
) -> str:
    with unit_of_work(sessions) as session:
        return emit(session, tenant_id=tenant_id, event_type=event_type, data={"x": 1})


def deliveries_of(
    sessions: sessionmaker[Session], tenant_id: str, endpoint_id: str
) -> list[WebhookDelivery]:
    with unit_of_work(sessions) as session:
        return list(list_deliveries(session, tenant_id, endpoint_id, limit=200, before=None))


class RedisServer:
    """A `redis-server` of our own on a fixed port, which a test may stop and start again."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._accepts, timeout=10)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("WALLET_TEST_REDIS_URL")
    if configured:
        yield worker_redis_url(configured)
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


# Fast timings for the processes under test: relay and sweep several times a second, retries
# after a fraction of a second.
FAST_EVENTS_ENV = {
    "WALLET_OUTBOX_RELAY_INTERVAL": "0.2",
    "WALLET_WEBHOOK_SWEEP_INTERVAL": "0.2",
    "WALLET_WEBHOOK_RETRY_BASE": "0.3",
    "WALLET_WEBHOOK_RETRY_FACTOR": "2",
    "WALLET_WEBHOOK_RETRY_MAX": "1",
    "WALLET_WEBHOOK_REQUEUE_AFTER": "3",
    "WALLET_WEBHOOK_TIMEOUT": "5",
    "WALLET_WEBHOOK_LEASE": "10",
}


# For a worker whose tests wait on other jobs (payouts, withdrawals, sweeps): the relay and the
# webhook sweep never tick. In a pytest worker's database, shared with the tests that ran
# before, they would work through the events and endpoints those left (endpoints that refuse,
# trickle or do not resolve: attempts of up to 5 s on every thread) and hold up the other
# jobs' ticks until they expire unrun.
WEBHOOK_JOBS_OFF = {"WALLET_OUTBOX_RELAY_INTERVAL": "3600", "WALLET_WEBHOOK_SWEEP_INTERVAL": "3600"}


class CeleryProcesses:
    """A real worker (through `wallet worker`) and a real beat (through Celery's own command
    line on `wallet.celery_app`), on one broker and queue.

    Like the supervisor of a deployment (systemd, compose), it starts a process again if it
    exits on its own: Celery's worker occasionally dies when the broker vanishes under it
    (kombu cannot restore unacknowledged messages on a closed Redis connection). `restarts`
    counts those, so a test can tell.
    """

    def __init__(
        self,
        database_url: str,
        broker_url: str | None,
        logs: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """Without a broker URL, the processes use kombu's SQL transport on the database."""
        self.logs = logs
        environment = {k: v for k, v in os.environ.items() if k != "WALLET_BROKER_URL"}
        self.env = {
            **environment,
            **FAST_EVENTS_ENV,
            **({"WALLET_BROKER_URL": broker_url} if broker_url else {}),
            "WALLET_DATABASE_URL": database_url,
            "WALLET_CELERY_QUEUE": f"wallet-test-{uuid.uuid4().hex[:12]}",
            "WALLET_WEBHOOK_SECRETS_KEY": TEST_SECRETS_KEY,
            "WALLET_DATA_DIR": str(logs / "data"),
            **(extra_env or {}),
        }
        self.restarts: list[str] = []
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._commands: dict[str, list[str]] = {}
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)

    def start(self) -> None:
        wallet_cli = [sys.executable, "-c", "from wallet.cli import app; app()"]
        worker = [*wallet_cli, "worker", "--pool=threads", "--concurrency=4"]
        beat = [sys.executable, "-m", "celery", "-A", "wallet.celery_app", "beat", "-l", "info"]
        self._start({"worker": worker, "beat": beat})
        self._supervisor.start()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> None:
        """SIGKILL the process (it dies at whatever line it is on); it is started again."""
        process = self._processes[name]
        process.kill()
        process.wait()

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor.is_alive():
            self._supervisor.join()
        for process in self._processes.values():
            process.terminate()
        for process in self._processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        self._forget_queue()

    def _forget_queue(self) -> None:
        """Delete this run's queue from a shared Redis (beat may have left messages in it)."""
        broker = self.env.get("WALLET_BROKER_URL")
        if broker is None:
            return
        queue = self.env["WALLET_CELERY_QUEUE"]
        client = redis.Redis.from_url(broker, socket_connect_timeout=1)
        try:
            keys = [
                f"{prefix}{name}"
                for name in (queue, f"{queue}.webhooks")
                for prefix in ("", "_kombu.binding.", "_kombu.binding_permanent.")
            ]
            client.delete(*keys)
        except redis.RedisError:
            pass  # a Redis this test stopped for good
        finally:
            client.close()

    def _start(self, commands: dict[str, list[str]]) -> None:
        self._commands.update(commands)
        for name in commands:
            self._spawn(name)
        ready = {"worker": "ready.", "beat": "beat: Starting"}

        def started() -> bool:
            for name, process in self._processes.items():
                if process.poll() is not None:
                    raise AssertionError(f"{name} exited:\n{self.log(name)}")
            return all(ready[name] in self.log(name) for name in commands)

        wait_until(started, timeout=60, interval=0.1)

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as output:
            process = subprocess.Popen(
                self._commands[name],
                cwd=REPOSITORY,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self._processes[name] = process
        return process

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            for name, process in list(self._processes.items()):
                if process.poll() is not None:
                    self.restarts.append(f"{name} exited with {process.returncode}")
                    self._spawn(name)


@pytest.fixture
def start_celery(
    engine: Engine, database_url: str, tmp_path: Path
) -> Iterator[Callable[..., CeleryProcesses]]:
    """Start a worker and beat on the migrated test database and the given broker (and with
    these environment variables besides)."""
    started: list[CeleryProcesses] = []

    def start(broker_url: str | None, extra_env: dict[str, str] | None = None) -> CeleryProcesses:
        processes = CeleryProcesses(database_url, broker_url, tmp_path, extra_env)
        started.append(processes)
        processes.start()
        return processes

    yield start
    for processes in started:
        processes.stop()
