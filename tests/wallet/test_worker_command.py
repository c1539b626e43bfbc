"""`wallet worker --beat`: the scheduler it forks lives no longer than the worker."""

import subprocess
import sys
import time
from pathlib import Path

import psutil
from sqlalchemy import Engine

from tests.webhook_fixtures import CeleryProcesses


def test_a_worker_killed_outright_takes_its_embedded_beat_with_it(
    engine: Engine, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    environment = CeleryProcesses(database_url, redis_url, tmp_path).env
    command = [sys.executable, "-c", "from wallet.cli import app; app()", "worker", "--beat"]
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [*command, "--pool=threads", "--concurrency=1"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        # Killed as soon as the beat is forked, before or after it has asked to be stopped
        # with its worker.
        while not psutil.Process(worker.pid).children():
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        beat = psutil.Process(worker.pid).children()
        worker.kill()
        worker.wait()
        _, alive = psutil.wait_procs(beat, timeout=15)
    finally:
        worker.kill()
    assert alive == [], log_path.read_text()
