"""How a sandbox bank is started (`Options`) and the switches a test flips while it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from fiat.sandbox.bank import Timings

DEFAULT_API_KEY = "sk_sandbox_local"


class Outage(StrEnum):
    """How the `/v1` API misbehaves: before doing anything, or after doing the work."""

    NONE = "none"
    UNAVAILABLE = "unavailable"  # 503 at once, nothing done
    TIMEOUT = "timeout"  # no answer for `outage_delay` s, then 504; nothing done
    ERROR_AFTER = "error_after"  # the work is done and committed, then 502
    TIMEOUT_AFTER = "timeout_after"  # the work is done, then no answer for `outage_delay` s


@dataclass
class Switches:
    """Runtime behaviour, changed through `PATCH /sandbox/settings`; not persisted."""

    outage: Outage = Outage.NONE
    outage_delay: float = 30.0
    webhook_url: str | None = None
    duplicate_webhooks: bool = False
    reverse_webhooks: bool = False
    webhook_hold: float = 0.0
    webhook_batch: int = 20


@dataclass(frozen=True)
class Options:
    """Everything `python -m fiat.sandbox` takes on its command line."""

    data_path: Path = Path(".sandbox-bank.sqlite3")
    host: str = "127.0.0.1"
    port: int = 8700
    api_keys: tuple[str, ...] = (DEFAULT_API_KEY,)
    webhook_url: str | None = None
    webhook_secret: str | None = None
    timings: Timings = field(default_factory=Timings)
    tick: float = 0.05
    webhook_timeout: float = 5.0
    webhook_retry_base: float = 1.0
    webhook_retry_max: float = 300.0
    webhook_max_attempts: int = 12
    webhook_batch: int = 20

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def argv(self) -> list[str]:
        """The command-line arguments that `parse_options` turns back into these options."""
        args = ["--host", self.host, "--port", str(self.port), "--data", str(self.data_path)]
        for key in self.api_keys:
            args += ["--api-key", key]
        if self.webhook_url is not None:
            args += ["--webhook-url", self.webhook_url]
        if self.webhook_secret is not None:
            args += ["--webhook-secret", self.webhook_secret]
        delays = {
            "--processing-delay": self.timings.processing,
            "--settle-delay": self.timings.settle,
            "--return-delay": self.timings.returned,
            "--chargeback-delay": self.timings.chargeback,
            "--auto-pay-delay": self.timings.auto_pay,
            "--tick": self.tick,
            "--webhook-timeout": self.webhook_timeout,
            "--webhook-retry-base": self.webhook_retry_base,
            "--webhook-retry-max": self.webhook_retry_max,
            "--webhook-max-attempts": self.webhook_max_attempts,
            "--webhook-batch": self.webhook_batch,
        }
        for flag, value in delays.items():
            if value is not None:
                args += [flag, str(value)]
        return args
