"""The supervisor of `wallet run`: capped exponential back-off; one member never stops the set."""

import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chains.devnet import find_free_port
from wallet.supervisor import Backoff

SUPERVISOR = """
import functools, sys
from wallet.supervisor import Backoff, Process, supervise

python, port = sys.executable, sys.argv[1]
supervise(
    [
        # A shell, not Python: one that took longer than `longest` to start and exit (a loaded
        # machine, coverage in every Python process) would count as recovered.
        Process("failing", ["sh", "-c", "exit 3"]),
        Process("server", [python, "-m", "http.server", "--bind", "127.0.0.1", port]),
    ],
    {},
    Backoff(first=0.2, longest=1.6),
    functools.partial(print, flush=True),
)
"""


def test_the_delay_doubles_with_each_exit_in_a_row_up_to_the_longest() -> None:
    backoff = Backoff(first=1.0, longest=60.0)
    assert [backoff.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff.delay(100_000) == 60


def serves(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_member_that_keeps_exiting_is_restarted_ever_later_and_the_others_keep_running(
    tmp_path: Path,
) -> None:
    port = find_free_port()
    server = f"http://127.0.0.1:{port}/"
    log = (tmp_path / "supervisor.log").open("wb")
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        delays: list[float] = []
        deadline = time.monotonic() + 30
        while len(delays) < 6:
            assert supervisor.poll() is None, (tmp_path / "supervisor.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "supervisor.log").read_text()
            time.sleep(0.2)
            delays = [
                float(found)
                for found in re.findall(
                    r"failing exited \(3\); restarting in ([\d.]+) s",
                    (tmp_path / "supervisor.log").read_text(),
                )
            ]
        assert delays[:6] == [0.2, 0.4, 0.8, 1.6, 1.6, 1.6]
        assert serves(server)
        assert "server exited" not in (tmp_path / "supervisor.log").read_text()
    finally:
        supervisor.send_signal(signal.SIGTERM)
        status = supervisor.wait(timeout=30)
        log.close()
    assert status == 0, (tmp_path / "supervisor.log").read_text()
    assert not serves(server)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_restart_delay_stops_everything_at_once(
    tmp_path: Path, signum: signal.Signals
) -> None:
    port = find_free_port()
    log = (tmp_path / "supervisor.log").open("wb")
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR.replace("longest=1.6", "longest=600"), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not (
            "restarting in 1.6 s" in (tmp_path / "supervisor.log").read_text()
            and serves(f"http://127.0.0.1:{port}/")
        ):
            assert time.monotonic() < deadline, (tmp_path / "supervisor.log").read_text()
            time.sleep(0.1)
        supervisor.send_signal(signum)
        status = supervisor.wait(timeout=10)
    finally:
        supervisor.kill()
        log.close()
    assert status == 0, (tmp_path / "supervisor.log").read_text()
    assert not serves(f"http://127.0.0.1:{port}/")


LAYERED = """
import functools, signal, sys
from pathlib import Path
from wallet.supervisor import Backoff, Process, supervise

python, work = sys.executable, Path(sys.argv[1])
member = '''
import signal, sys, time
from pathlib import Path
name, work = sys.argv[1], Path(sys.argv[2])
def note(what, text):
    # Whole or not at all: the test may read the file the moment it exists.
    (work / f"{name}.{what}.part").write_text(text)
    (work / f"{name}.{what}.part").replace(work / f"{name}.{what}")
def stop(signum, frame):
    note("stopped", f"{time.monotonic()} {signal.Signals(signum).name}")
    sys.exit(0)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
time.sleep(1 if name == "database" else 0)
note("started", str(time.monotonic()))
while True:
    time.sleep(0.05)
'''
supervise(
    [
        Process(
            "database",
            [python, "-c", member, "database", str(work)],
            ready=(work / "database.started").exists,
            stop_signal=signal.SIGINT,
        ),
        Process("api", [python, "-c", member, "api", str(work)]),
    ],
    {},
    Backoff(first=0.2, longest=1.6),
    functools.partial(print, flush=True),
)
"""


@contextlib.contextmanager
def layered_set_running(work: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The LAYERED supervisor, once both its members have started; killed on the way out."""
    with (work / "supervisor.log").open("wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-c", LAYERED, str(work)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 30
            while not (work / "api.started").exists():
                assert time.monotonic() < deadline, (work / "supervisor.log").read_text()
                time.sleep(0.05)
            yield supervisor
        finally:
            supervisor.kill()


def test_a_member_the_others_need_starts_first_and_stops_last(tmp_path: Path) -> None:
    with layered_set_running(tmp_path) as supervisor:
        supervisor.send_signal(signal.SIGTERM)
        status = supervisor.wait(timeout=30)
    assert status == 0, (tmp_path / "supervisor.log").read_text()
    database_ready = float((tmp_path / "database.started").read_text())
    assert float((tmp_path / "api.started").read_text()) > database_ready
    api_stopped, api_signal = (tmp_path / "api.stopped").read_text().split()
    database_stopped, database_signal = (tmp_path / "database.stopped").read_text().split()
    assert float(database_stopped) > float(api_stopped)
    assert (api_signal, database_signal) == ("SIGTERM", "SIGINT")


def test_a_supervisor_killed_outright_leaves_no_member_running(tmp_path: Path) -> None:
    with layered_set_running(tmp_path) as supervisor:
        supervisor.kill()
        supervisor.wait(timeout=10)
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"{name}.stopped").exists() for name in ("api", "database")):
        assert time.monotonic() < deadline, sorted(path.name for path in tmp_path.iterdir())
        time.sleep(0.05)
    stopped_by = {
        name: (tmp_path / f"{name}.stopped").read_text().split()[1] for name in ("api", "database")
    }
    assert stopped_by == {"api": "SIGTERM", "database": "SIGINT"}
