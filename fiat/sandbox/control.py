"""Driving a running sandbox bank: start it as a process, pay pay-ins, switch outages."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from fiat.model import Payin, PayinStatus, Payment, PayoutStatus
from fiat.sandbox.settings import Options
from fiat.wire import decode_payment


class SandboxControl:
    """The sandbox-only endpoints (`/sandbox/...`) of a running sandbox bank."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers={"authorization": f"Bearer {api_key}"},
        )

    def close(self) -> None:
        self._http.close()

    def pay(self, payin_id: str) -> Payin:
        """The customer paid the pending pay-in `payin_id`."""
        payin = decode_payment(self._send("POST", f"/sandbox/payins/{payin_id}/pay"))
        if not isinstance(payin, Payin):
            raise ValueError(f"{payin_id} is not a pay-in")
        return payin

    def amend(
        self,
        payment_id: str,
        *,
        amount: int | None = None,
        status: PayinStatus | PayoutStatus | None = None,
    ) -> Payment:
        """Change a record silently: no event, no version change (a planted difference)."""
        changes: dict[str, Any] = {}
        if amount is not None:
            changes["amount"] = amount
        if status is not None:
            changes["status"] = status
        return decode_payment(self._send("PATCH", f"/sandbox/payments/{payment_id}", changes))

    def configure(self, **switches: Any) -> dict[str, Any]:
        """Change runtime switches (see `fiat.sandbox.settings.Switches`); returns them all."""
        answer: dict[str, Any] = self._send("PATCH", "/sandbox/settings", switches)
        return answer

    def events(self) -> list[dict[str, Any]]:
        """Every event (`id`, `type`, `payment_id`, `created_at`) with its delivery state,
        oldest first."""
        answer: list[dict[str, Any]] = self._send("GET", "/sandbox/events")["data"]
        return answer

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()


@dataclass
class SandboxProcess:
    """A sandbox bank running as a child process of ours."""

    options: Options
    process: subprocess.Popen[bytes]

    def stop(self, timeout: float = 5.0) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_sandbox(options: Options, ready_within: float = 20.0) -> SandboxProcess:
    """Start `python -m fiat.sandbox` with `options` and wait until it answers."""
    arguments = [sys.executable, "-m", "fiat.sandbox", *options.argv()]
    process = subprocess.Popen(arguments)  # noqa: S603 - fixed argument list, no shell
    deadline = time.monotonic() + ready_within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the sandbox bank exited with code {process.returncode}")
        try:
            if httpx.get(f"{options.url}/health", timeout=1.0).is_success:
                return SandboxProcess(options, process)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(f"the sandbox bank did not answer within {ready_within} s")
