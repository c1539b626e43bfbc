"""Sending the sandbox bank's events to the webhook URL, signed with Standard Webhooks.

What is due goes out in deliveries of up to `webhook_batch` events (`{"events": [...]}`, see
`fiat.webhooks`), a payment's due events together and in order, so that no payment has two
deliveries in flight; deliveries go in parallel, up to `_IN_FLIGHT` at a time, each as soon as
its events are due, as a real provider's go: what is due waits for no other delivery to end.
Each is retried with exponential backoff until a 2xx (or `webhook_max_attempts`), signed
afresh at every attempt. On request each delivery is sent twice (`duplicate_webhooks`);
events wait until the oldest has waited `webhook_hold` s, then all that are due go at once;
`reverse_webhooks` sends them newest first, one delivery after the other.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial

import aiohttp

from fiat.sandbox.settings import Options, Switches
from fiat.sandbox.store import transaction
from fiat.webhooks import delivery_body, delivery_id, sign_body

log = logging.getLogger(__name__)

# Events read from the outbox per step.
_DUE = 1000
# Deliveries being sent at once (the HTTP client's pool holds 100 connections).
_IN_FLIGHT = 64

Delivery = list[sqlite3.Row]


class WebhookSender:
    def __init__(
        self,
        db: sqlite3.Connection,
        options: Options,
        switches: Switches,
        http: aiohttp.ClientSession,
        clock: Callable[[], float],
    ) -> None:
        self.db = db
        self.options = options
        self.switches = switches
        self.http = http
        self.clock = clock
        # The payments whose events are being delivered, and the deliveries.
        self._sending: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def deliver_due(self) -> int:
        """Start delivering every event that is due, of payments with no delivery in flight;
        returns how many were started. A reversed delivery is awaited whole."""
        url, secret = self.switches.webhook_url, self.options.webhook_secret
        if url is None or secret is None:
            return 0
        now, hold, size = self.clock(), self.switches.webhook_hold, self.switches.webhook_batch
        if hold > 0:
            (oldest,) = self.db.execute(
                "SELECT min(next_attempt_at) FROM events WHERE next_attempt_at IS NOT NULL"
            ).fetchone()
            if oldest is None or oldest + hold > now:
                return 0
        rows = self.db.execute(
            "SELECT id, payment_id, body, attempts FROM events WHERE next_attempt_at <= ?"
            " ORDER BY seq LIMIT ?",
            (now, _DUE),
        ).fetchall()
        if self.switches.reverse_webhooks:
            newest_first = rows[::-1]
            for start in range(0, len(newest_first), size):
                await self._attempt(url, secret, newest_first[start : start + size])
            return len(rows)
        by_payment: dict[str, Delivery] = {}
        for row in rows:
            if row["payment_id"] not in self._sending:
                by_payment.setdefault(row["payment_id"], []).append(row)
        started = 0
        for delivery in _packed(list(by_payment.values()), size):
            if len(self._tasks) >= _IN_FLIGHT:
                break
            payments = {row["payment_id"] for row in delivery}
            task = asyncio.create_task(self._attempt(url, secret, delivery))
            self._sending |= payments
            self._tasks.add(task)
            task.add_done_callback(partial(self._sent, payments))
            started += len(delivery)
        return started

    async def stop(self) -> None:
        """Stop sending: what was being sent stays due, and goes again after a restart."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _sent(self, payments: set[str], task: asyncio.Task[None]) -> None:
        self._sending -= payments
        self._tasks.discard(task)

    async def _attempt(self, url: str, secret: str, delivery: Delivery) -> None:
        body = delivery_body([row["body"].encode() for row in delivery])
        message_id = delivery_id([row["id"] for row in delivery])
        copies = 2 if self.switches.duplicate_webhooks else 1
        error = None
        for _ in range(copies):
            signed = sign_body(secret, message_id, body)
            try:
                async with self.http.post(
                    url,
                    data=signed.body,
                    headers=signed.headers,
                    timeout=aiohttp.ClientTimeout(total=self.options.webhook_timeout),
                    allow_redirects=False,
                ) as response:
                    await response.read()
                    if not 200 <= response.status < 300:
                        error = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as failure:
                error = f"{type(failure).__name__}: {failure}"
        now = self.clock()
        if error is not None:
            log.warning("webhook %s (%d events) failed: %s", message_id, len(delivery), error)
        # One transaction for the delivery's events: one commit, not one per event.
        with transaction(self.db):
            if error is None:
                self.db.executemany(
                    "UPDATE events SET attempts = attempts + 1, delivered_at = ?,"
                    " next_attempt_at = NULL, last_error = NULL WHERE id = ?",
                    [(now, row["id"]) for row in delivery],
                )
            else:
                self.db.executemany(
                    "UPDATE events SET attempts = ?, next_attempt_at = ?, last_error = ?"
                    " WHERE id = ?",
                    [self._failed(row, now, error) for row in delivery],
                )

    def _failed(self, row: sqlite3.Row, now: float, error: str) -> tuple[object, ...]:
        attempts = row["attempts"] + 1
        return attempts, self._retry_at(attempts, now), error, row["id"]

    def _retry_at(self, attempts: int, now: float) -> float | None:
        if attempts >= self.options.webhook_max_attempts:
            return None
        delay: float = self.options.webhook_retry_base * 2 ** (attempts - 1)
        return now + min(self.options.webhook_retry_max, delay)


def _packed(payments: Sequence[Delivery], size: int) -> list[Delivery]:
    """Deliveries of up to `size` events, each payment's events in one of them: a payment with
    more than `size` due events is a delivery of its own."""
    deliveries: list[Delivery] = []
    for events in payments:
        if deliveries and len(deliveries[-1]) + len(events) <= size:
            deliveries[-1].extend(events)
        else:
            deliveries.append(list(events))
    return deliveries
