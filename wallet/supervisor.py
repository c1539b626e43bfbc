"""`wallet run`: the processes of the embedded profile, started, restarted and stopped together.

A process that exits is started again after a delay that doubles with each exit in a row, up
to a cap, as systemd's or Kubernetes' restart back-off would in production. One member that
keeps failing never stops the others; only SIGINT or SIGTERM stops the set. A process the
others need (the embedded database) says when it is ready: the ones after it start then, and
stop before it.
"""

import functools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

from chains.devnet import stop_with_parent


@dataclass(frozen=True)
class Process:
    """A command to keep running, by a name for the log."""

    name: str
    command: Sequence[str]
    ready: Callable[[], bool] | None = None
    """For a process the later ones need: whether it is ready yet (asked until it is, once)."""
    stop_signal: signal.Signals = signal.SIGTERM


@dataclass(frozen=True)
class Backoff:
    """Delays before a restart: `first`, doubled for each exit in a row, at most `longest`.

    A process that stayed up longer than `longest` had recovered: its next exit starts over
    from `first`.
    """

    first: float
    longest: float

    def delay(self, exits_in_a_row: int) -> float:
        return min(self.longest, self.first * 2.0 ** min(exits_in_a_row - 1, 64))


@dataclass
class _Member:
    process: Process
    popen: subprocess.Popen[bytes]
    started_at: float
    exits_in_a_row: int = 0
    restart_at: float | None = None

    @classmethod
    def start(cls, process: Process, env: dict[str, str]) -> "_Member":
        return cls(process, _popen(process, env), time.monotonic())

    def restart(self, env: dict[str, str]) -> None:
        self.popen, self.started_at = _popen(self.process, env), time.monotonic()
        self.restart_at = None


def supervise(
    processes: Sequence[Process],
    environment: dict[str, str],
    backoff: Backoff,
    report: Callable[[str], None],
) -> None:
    """Run every process until SIGINT or SIGTERM, restarting those that exit."""
    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    env = {**os.environ, **environment}
    members: list[_Member] = []

    def watch_all() -> None:
        time.sleep(0.1)
        for member in members:
            if not stopping:
                _watch(member, env, backoff, report)

    try:
        for process in processes:
            if stopping:
                return
            members.append(_Member.start(process, env))
            while process.ready is not None and not stopping and not process.ready():
                watch_all()
        while not stopping:
            watch_all()
    finally:
        # Those the others need stop last, once nothing uses them.
        _stop_all([member for member in members if member.process.ready is None])
        _stop_all([member for member in members if member.process.ready is not None])


def _watch(
    member: _Member, env: dict[str, str], backoff: Backoff, report: Callable[[str], None]
) -> None:
    """Restart the member when its delay is over; give it one when it has just exited."""
    now = time.monotonic()
    if member.restart_at is not None:
        if now >= member.restart_at:
            member.restart(env)
        return
    status = member.popen.poll()
    if status is None:
        return
    if now - member.started_at > backoff.longest:
        member.exits_in_a_row = 0
    member.exits_in_a_row += 1
    delay = backoff.delay(member.exits_in_a_row)
    member.restart_at = now + delay
    report(
        f"{member.process.name} exited ({status}); restarting in {delay:g} s "
        f"(exit {member.exits_in_a_row} in a row)"
    )


def _popen(process: Process, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Started from the main thread (the only one `supervise` may run in, for its signal
    # handlers), which lives as long as the supervision: a supervisor killed outright takes
    # its members with it.
    return subprocess.Popen(  # noqa: S603 - our own commands, no shell
        process.command,
        env=env,
        preexec_fn=functools.partial(stop_with_parent, process.stop_signal, os.getpid()),  # noqa: PLW1509
    )


def _stop_all(members: list[_Member]) -> None:
    running = [member for member in members if member.popen.poll() is None]
    for member in running:
        member.popen.send_signal(member.process.stop_signal)
    for popen in (member.popen for member in running):
        try:
            popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
