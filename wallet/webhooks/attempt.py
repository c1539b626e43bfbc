"""One attempt at a delivery: claim it with a lease, post without a lock, record the outcome.

An attempt claims the delivery in a short transaction, posts without holding any lock, and
records the outcome in a second short transaction; a worker that dies mid-attempt leaves a
lease that expires, and the sweep sends the delivery again. Failed attempts are retried with
exponential backoff and jitter until the retry period is over. Delivery is at least once:
receivers dedupe by the `webhook-id` header, which is the event id.

A claim is refused while the endpoint or its tenant has as many attempts in flight as
allowed, or while the endpoint is paused after failing again and again: the delivery then
waits (for the next sweep, or for the pause to end) without counting as an attempt, so one
tenant's slow receivers hold a bounded share of the workers.
"""

import logging
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from sqlalchemy.orm import Session, sessionmaker

from wallet.database import run_transaction
from wallet.settings import Settings
from wallet.webhooks import repository
from wallet.webhooks.egress import attempt_deadline, describe_failure
from wallet.webhooks.envelope import event_body, signed_headers
from wallet.webhooks.models import DeliveryStatus
from wallet.webhooks.repository import ENDPOINT_DELETED, give_up_for_deleted_endpoint
from wallet.webhooks.secrets import SecretBox, SecretUnreadable

log = logging.getLogger(__name__)

SECRET_UNREADABLE: Final = "signing secret unreadable"  # noqa: S105 - a message, no secret


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, and how long to keep trying before giving up."""

    base: float = 5.0
    factor: float = 6.0
    maximum: float = 3600.0
    give_up_after: float = 86_400.0

    def delay(self, attempt_number: int) -> float:
        """Seconds to wait after failed attempt `attempt_number` (1 for the first attempt).

        With the defaults: about 5 s, 30 s, 3 min, 18 min, then every hour; each up to a
        quarter shorter at random, so endpoints that failed together don't retry together.
        """
        exponent = min(attempt_number - 1, 64)
        nominal = min(self.maximum, self.base * math.pow(self.factor, exponent))
        return nominal * random.uniform(0.75, 1.0)  # noqa: S311 - jitter, not crypto


@dataclass(frozen=True)
class DeliveryOptions:
    retry: RetryPolicy
    timeout: float = 10.0
    lease: float = 60.0
    endpoint_concurrency: int = 2
    tenant_concurrency: int = 4
    # Failed attempts in a row after which an endpoint pauses, on the retry schedule.
    pause_after: int = 5
    # How long a delivery refused for want of a free slot waits before it is due again.
    busy_wait: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "DeliveryOptions":
        return cls(
            retry=RetryPolicy(
                base=settings.webhook_retry_base,
                factor=settings.webhook_retry_factor,
                maximum=settings.webhook_retry_max,
                give_up_after=settings.webhook_give_up_after,
            ),
            timeout=settings.webhook_timeout,
            # The lease must outlast the attempt, or a second worker may post meanwhile.
            lease=max(settings.webhook_lease, 2 * settings.webhook_timeout),
            endpoint_concurrency=settings.webhook_endpoint_concurrency,
            tenant_concurrency=settings.webhook_tenant_concurrency,
            pause_after=settings.webhook_endpoint_pause_after,
            busy_wait=settings.webhook_sweep_interval,
        )


@dataclass(frozen=True)
class AttemptOutcome:
    delivery_id: str
    attempt_number: int
    status: DeliveryStatus
    status_code: int | None
    error: str | None


def deliver(
    sessions: sessionmaker[Session],
    delivery_id: str,
    *,
    client: httpx.Client,
    secrets: SecretBox,
    options: DeliveryOptions,
) -> AttemptOutcome | None:
    """Make one attempt at the delivery if it is pending and due; None if it is not."""
    claim = run_transaction(sessions, lambda session: _claim(session, delivery_id, options))
    if claim is None:  # not due, or waiting for a free slot or the end of a pause
        return None
    if isinstance(claim, AttemptOutcome):
        return claim
    started = time.monotonic()
    status_code, error = _post(claim, client=client, secrets=secrets, timeout=options.timeout)
    duration_ms = round((time.monotonic() - started) * 1000)
    delay = options.retry.delay(claim.attempt_number)
    status = run_transaction(
        sessions,
        lambda session: _record(
            session,
            claim,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            delay=delay,
            options=options,
        ),
    )
    if status is None:
        log.warning("webhook delivery %s was taken over during its attempt", delivery_id)
        status = DeliveryStatus.PENDING
    return AttemptOutcome(delivery_id, claim.attempt_number, status, status_code, error)


@dataclass(frozen=True)
class _Claim:
    delivery_id: str
    endpoint_id: str
    attempt_number: int
    attempted_at: datetime
    url: str
    sealed_secret: bytes
    event_id: str
    event_type: str
    event_created_at: datetime
    payload: Any


def _claim(
    session: Session, delivery_id: str, options: DeliveryOptions
) -> _Claim | AttemptOutcome | None:
    due = session.execute(repository.DUE_DELIVERY, {"id": delivery_id}).one_or_none()
    if due is None:
        return None
    session.execute(repository.LOCK_TENANT_CLAIMS, {"tenant": due.tenant_id})
    in_flight = session.execute(
        repository.ATTEMPTS_IN_FLIGHT, {"endpoint": due.endpoint_id, "tenant": due.tenant_id}
    ).one()
    if (
        due.paused_until is not None
        or in_flight.endpoint >= options.endpoint_concurrency
        or in_flight.tenant >= options.tenant_concurrency
    ):
        # Paused: due when the pause ends; busy: due again a little later.
        wait = 0.0 if due.paused_until is not None else float(options.busy_wait)
        session.execute(
            repository.DEFER_DELIVERY,
            {"id": delivery_id, "wait": wait, "not_before": due.paused_until},
        )
        return None
    row = session.execute(
        repository.CLAIM_DELIVERY,
        {"id": delivery_id, "lease": float(options.lease)},
    ).one_or_none()
    if row is None:
        return None
    if row.deleted_at is not None:
        # delete_endpoint gives up its pending deliveries; this one was claimed meanwhile.
        give_up_for_deleted_endpoint(session, row.endpoint_id, delivery_id)
        return AttemptOutcome(
            delivery_id, row.attempt_count, DeliveryStatus.FAILED, None, ENDPOINT_DELETED
        )
    return _Claim(
        delivery_id=row.id,
        endpoint_id=row.endpoint_id,
        attempt_number=row.attempt_count,
        attempted_at=row.attempted_at,
        url=row.url,
        sealed_secret=bytes(row.secret_ciphertext),
        event_id=row.event_id,
        event_type=row.event_type,
        event_created_at=row.created_at,
        payload=row.payload,
    )


def _post(
    claim: _Claim, *, client: httpx.Client, secrets: SecretBox, timeout: float
) -> tuple[int | None, str | None]:
    """Post the event; the response's status code, or why there is none."""
    try:
        secret = secrets.open(claim.sealed_secret, claim.endpoint_id)
    except SecretUnreadable as error:
        log.error("webhook endpoint %s: %s", claim.endpoint_id, error)
        return None, SECRET_UNREADABLE
    body = event_body(claim.event_id, claim.event_type, claim.event_created_at, claim.payload)
    headers = signed_headers(secret, claim.event_id, body, datetime.now(UTC))
    try:
        # Streamed and never read: the receiver's body is not ours to store or wait for.
        with (
            attempt_deadline(timeout),
            client.stream(
                "POST", claim.url, content=body.encode(), headers=headers, timeout=timeout
            ) as response,
        ):
            status_code = response.status_code
    except Exception as error:  # any failure to post is a failed attempt
        log.warning(
            "webhook delivery %s to endpoint %s failed: %s: %s",
            claim.delivery_id,
            claim.endpoint_id,
            type(error).__name__,
            error,
        )
        return None, describe_failure(error)
    return status_code, None if 200 <= status_code < 300 else f"HTTP {status_code}"


def _record(
    session: Session,
    claim: _Claim,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    delay: float,
    options: DeliveryOptions,
) -> DeliveryStatus | None:
    """Write the attempt and the delivery's new state; None if another worker took it over."""
    session.execute(
        repository.INSERT_ATTEMPT,
        {
            "id": claim.delivery_id,
            "number": claim.attempt_number,
            "at": claim.attempted_at,
            "code": status_code,
            "error": error,
            "duration": duration_ms,
        },
    )
    status = session.execute(
        repository.RECORD_OUTCOME,
        {
            "id": claim.delivery_id,
            "number": claim.attempt_number,
            "ok": error is None,
            "give_up": float(options.retry.give_up_after),
            "delay": float(delay),
            "code": status_code,
            "error": error,
        },
    ).scalar_one_or_none()
    if status is None:
        return None
    session.execute(
        repository.RECORD_ENDPOINT_OUTCOME,
        {
            "endpoint": claim.endpoint_id,
            "ok": error is None,
            "pause_after": options.pause_after,
            "base": float(options.retry.base),
            "factor": float(options.retry.factor),
            "maximum": float(options.retry.maximum),
        },
    )
    return DeliveryStatus(status)
