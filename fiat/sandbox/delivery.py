"""Sending the sandbox bank's events to the webhook URL, signed with Standard Webhooks.

Events of one payment are sent one after the other, in order. Each is retried with
exponential backoff until a 2xx (or `webhook_max_attempts`), signed afresh at every attempt.
On request each event is sent twice (`duplicate_webhooks`); events wait until the oldest
has waited `webhook_hold` s, then all that are due go at once; `reverse_webhooks` sends them
newest first.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable

import httpx

from fiat.sandbox.settings import Options, Switches
from fiat.webhooks import sign_body

log = logging.getLogger(__name__)

_BATCH = 200


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

    async def deliver_due(self) -> int:
        """Attempt every event that is due; returns how many were attempted."""
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
        else:
            # In order within a payment; payments in parallel.
            by_payment: dict[str, list[sqlite3.Row]] = {}
            for row in rows:
                by_payment.setdefault(row["payment_id"], []).append(row)
            await asyncio.gather(
                *(self._in_turn(url, secret, events) for events in by_payment.values())
            )
        return len(rows)

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
