"""The process commands of `wallet`: their options reach Celery, their status is the exit code."""

import os
import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.webhook_fixtures import free_port
from wallet import cli
from wallet.database import scratch_database
from wallet.settings import Settings


def test_worker_passes_its_options_and_exits_with_the_workers_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[Settings, dict[str, Any]]] = []

    def run_worker(settings: Settings, **options: Any) -> int:
        calls.append((settings, options))
        return 3

    monkeypatch.setenv("WALLET_CELERY_QUEUE", "from-the-environment")
    monkeypatch.setattr(cli, "run_worker", run_worker)
    result = CliRunner().invoke(
        cli.app,
        [
            "worker",
            "--concurrency",
            "2",
            "--pool",
            "threads",
            "-B",
            "-Q",
            "a,b",
            "--loglevel",
            "debug",
        ],
    )
    assert result.exit_code == 3, result.output
    ((settings, options),) = calls
    assert settings.celery_queue == "from-the-environment"
    assert options == {
        "concurrency": 2,
        "pool": "threads",
        "beat": True,
        "queues": ["a", "b"],
        "loglevel": "debug",
    }

    calls.clear()
    assert CliRunner().invoke(cli.app, ["worker"]).exit_code == 3
    assert calls[0][1] == {
        "concurrency": None,
        "pool": None,
        "beat": False,
        "queues": None,
        "loglevel": "info",
    }


def test_beat_passes_its_log_level_and_exits_with_its_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    levels: list[str] = []

    def run_beat(settings: Settings, *, loglevel: str) -> int:
        levels.append(loglevel)
        return 0

    monkeypatch.setattr(cli, "run_beat", run_beat)
    assert CliRunner().invoke(cli.app, ["beat"]).exit_code == 0
    assert CliRunner().invoke(cli.app, ["beat", "--loglevel", "warning"]).exit_code == 0
    assert levels == ["info", "warning"]


def _wallet(database_url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "WALLET_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "wallet", *arguments]
    return subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_database_out_of_reach_or_without_its_schema_is_said_in_one_line(
    server_url: str,
) -> None:
    done = _wallet(f"postgresql://postgres@127.0.0.1:{free_port()}/wallet", "keys", "list")
    assert done.returncode == 1
    [said] = done.stderr.splitlines()
    assert said.startswith("wallet: the database cannot be reached (connection failed: "), said
    assert said.endswith(
        "WALLET_DATABASE_URL names it, the embedded one in WALLET_DATA_DIR when unset"
    )

    with scratch_database(server_url, f"wallet_cli_empty_{os.getpid()}") as empty:
        done = _wallet(empty, "keys", "list")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        'wallet: the database has no schema yet (relation "api_keys" does not exist); '
        "`wallet db migrate` makes it"
    ]
