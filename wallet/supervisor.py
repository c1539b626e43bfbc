"""`wallet run`: the processes of the embedded profile, started, restarted and stopped together.

A process that exits is started again, as systemd or compose would in production; one that
keeps failing (five exits within a minute) stops the whole set.
"""

import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

RESTART_WINDOW_S = 60.0
RESTARTS_IN_WINDOW = 5


@dataclass(frozen=True)
class Process:
    """A `wallet` subcommand to keep running."""

    name: str
    arguments: Sequence[str]


@dataclass
class _Child:
    process: Process
    popen: subprocess.Popen[bytes]
    exits: deque[float] = field(default_factory=deque)


def supervise(processes: Sequence[Process], environment: dict[str, str]) -> int:
    """Run every process until SIGINT/SIGTERM; return non-zero if one kept failing."""
    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    env = {**os.environ, **environment}
    children = [_Child(process, _start(process, env)) for process in processes]
    status = 0
    while not stopping:
        time.sleep(0.5)
        for child in children:
            if child.popen.poll() is None:
                continue
            now = time.monotonic()
            child.exits.append(now)
            while child.exits and child.exits[0] < now - RESTART_WINDOW_S:
                child.exits.popleft()
            if len(child.exits) >= RESTARTS_IN_WINDOW:
                print(f"{child.process.name} keeps exiting; stopping everything", flush=True)
                status, stopping = 1, True
                break
            print(f"{child.process.name} exited ({child.popen.returncode}); restarting", flush=True)
            child.popen = _start(child.process, env)
    _stop_all(children)
    return status


def _start(process: Process, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "wallet", *process.arguments], env=env)  # noqa: S603


def _stop_all(children: list[_Child]) -> None:
    for child in children:
        if child.popen.poll() is None:
            child.popen.terminate()
    for child in children:
        try:
            child.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.popen.kill()
