"""The process commands of `wallet`: their options reach Celery, their status is the exit code."""

from typing import Any

import pytest
from typer.testing import CliRunner

from wallet import cli
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
