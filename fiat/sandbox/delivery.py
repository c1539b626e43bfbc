"""Sending the sandbox bank's events to the webhook URL, signed with Standard Webhooks.

Events of one payment are sent one after the other, in order; payments in parallel, up to
`_IN_FLIGHT` at a time, each sent as soon as it is due, as a real provider's deliveries go:
what is due waits for no other payment's delivery to end. Each is retried with exponential
backoff until a 2xx (or `webhook_max_attempts`), signed afresh at every attempt. On request
each event is sent twice (`duplicate_webhooks`); events wait until the oldest has waited
`webhook_hold` s, then all that are due go at once; `reverse_webhooks` sends them newest
first.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from functools import partial

import httpx

from fiat.sandbox.settings import Options, Switches
from fiat.webhooks import sign_body

log = logging.getLogger(__name__)

_BATCH = 200
# Payments whose events are being sent at once (the HTTP client's pool holds 100 connections).
_IN_FLIGHT = 64


class WebhookSender:
    def __init__(
        self,
        db: sqlite3.Connection,
        options: Options,
        switches: Switches,
        http: httpx.AsyncClient,
        clock: Callable[[], float],
    ) -> None:
        self.db = db
        self.options = options
        self.switches = switches
        self.http = http
        self.clock = clock
        self._sending: dict[str, asyncio.Task[None]] = {}

    async def deliver_due(self) -> int:
        """Start sending every event that is due, of payments with no event being sent;
        returns how many were started. A reversed delivery is awaited whole."""
        url, secret = self.switches.webhook_url, self.options.webhook_secret
        if url is None or secret is None:
            return 0
        now, hold = self.clock(), self.switches.webhook_hold
        if hold > 0:
            (oldest,) = self.db.execute(
                "SELECT min(next_attempt_at) FROM events WHERE next_attempt_at IS NOT NULL"
            ).fetchone()
            if oldest is None or oldest + hold > now:
                return 0
        rows = self.db.execute(
            "SELECT id, payment_id, body, attempts FROM events WHERE next_attempt_at <= ?"
            " ORDER BY seq LIMIT ?",
            (now, _BATCH),
        ).fetchall()
        if self.switches.reverse_webhooks:
            await self._in_turn(url, secret, rows[::-1])
            return len(rows)
        by_payment: dict[str, list[sqlite3.Row]] = {}
        for row in rows:
            if row["payment_id"] not in self._sending:
                by_payment.setdefault(row["payment_id"], []).append(row)
        started = list(by_payment.items())[: _IN_FLIGHT - len(self._sending)]
        for payment_id, events in started:
            task = asyncio.create_task(self._in_turn(url, secret, events))
            self._sending[payment_id] = task
            task.add_done_callback(partial(self._sent, payment_id))
        return sum(len(events) for _, events in started)

    async def stop(self) -> None:
        """Stop sending: what was being sent stays due, and goes again after a restart."""
        for task in self._sending.values():
            task.cancel()
        await asyncio.gather(*self._sending.values(), return_exceptions=True)

    def _sent(self, payment_id: str, _: asyncio.Task[None]) -> None:
        del self._sending[payment_id]

    async def _in_turn(self, url: str, secret: str, rows: list[sqlite3.Row]) -> None:
        for row in rows:
            await self._attempt(url, secret, row)

    async def _attempt(self, url: str, secret: str, row: sqlite3.Row) -> None:
        copies = 2 if self.switches.duplicate_webhooks else 1
        error = None
        for _ in range(copies):
            delivery = sign_body(secret, row["id"], row["body"].encode())
            try:
                response = await self.http.post(
                    url,
                    content=delivery.body,
                    headers=delivery.headers,
                    timeout=self.options.webhook_timeout,
                )
                if not response.is_success:
                    error = f"HTTP {response.status_code}"
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {failure}"
        now = self.clock()
        if error is None:
            self.db.execute(
                "UPDATE events SET attempts = attempts + 1, delivered_at = ?,"
                " next_attempt_at = NULL, last_error = NULL WHERE id = ?",
                (now, row["id"]),
            )
            return
        attempts = row["attempts"] + 1
        log.warning("webhook %s attempt %d failed: %s", row["id"], attempts, error)
        retry_at = None
        if attempts < self.options.webhook_max_attempts:
            delay = self.options.webhook_retry_base * 2 ** (attempts - 1)
            retry_at = now + min(self.options.webhook_retry_max, delay)
        self.db.execute(
            "UPDATE events SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
            (attempts, retry_at, error, row["id"]),
        )
