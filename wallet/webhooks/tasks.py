"""Celery tasks: thin wrappers running the plain functions in the worker's process context.

The functions (`relay_outbox`, `deliver`, `sweep_due_deliveries`) own their transactions and
are tested without Celery; a task only finds the process's database, keys and HTTP client,
and says how a delivery is handed over: as a `deliver` task on the broker.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from wallet.database import unit_of_work
from wallet.settings import Settings
from wallet.webhooks import repository
from wallet.webhooks.attempt import DeliveryOptions, deliver
from wallet.webhooks.dispatch import SendDelivery, relay_outbox, sweep_due_deliveries
from wallet.webhooks.secrets import SecretBox

log = logging.getLogger(__name__)

RELAY_OUTBOX: Final = "wallet.events.relay_outbox"
DELIVER_WEBHOOK: Final = "wallet.webhooks.deliver"
SWEEP_WEBHOOK_DELIVERIES: Final = "wallet.webhooks.sweep_due_deliveries"

# Sending gives up quickly when the broker is down: the work waits in the database anyway.
SEND_RETRY_POLICY: Final[dict[str, Any]] = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}


@dataclass(frozen=True)
class TaskContext:
    """What the tasks of one worker process work with."""

    sessions: sessionmaker[Session]
    secrets: SecretBox
    client: httpx.Client
    settings: Settings
    delivery: DeliveryOptions
    sql_broker: bool = False  # kombu's SQL transport on our database (the embedded profile)


def register_tasks(app: Celery, context: Callable[[], TaskContext]) -> None:
    """Define the tasks of events out on `app`; `context` gives the calling process's context."""
    send_delivery = delivery_sender(app)

    def relay_outbox_task() -> None:
        current = context()
        report = relay_outbox(
            current.sessions, send_delivery, batch_size=current.settings.outbox_relay_batch
        )
        if report.events:
            log.info(
                "relayed %d events: %d deliveries, %d handed over",
                report.events,
                report.deliveries,
                report.handed_over,
            )

    def deliver_task(delivery_id: str) -> None:
        current = context()
        outcome = deliver(
            current.sessions,
            delivery_id,
            client=current.client,
            secrets=current.secrets,
            options=current.delivery,
        )
        if outcome is not None:
            log.info(
                "webhook delivery %s attempt %d: %s (%s)",
                outcome.delivery_id,
                outcome.attempt_number,
                outcome.status,
                outcome.status_code or outcome.error,
            )

    def sweep_task() -> None:
        current = context()
        sweep_due_deliveries(
            current.sessions,
            send_delivery,
            requeue_after=current.settings.webhook_requeue_after,
        )
        if current.sql_broker:
            purge_consumed_messages(current.sessions)

    # Registered by name: the beat schedule and the senders refer to these names only.
    app.task(name=RELAY_OUTBOX, ignore_result=True, shared=False)(relay_outbox_task)
    app.task(name=DELIVER_WEBHOOK, ignore_result=True, shared=False)(deliver_task)
    app.task(name=SWEEP_WEBHOOK_DELIVERIES, ignore_result=True, shared=False)(sweep_task)


def purge_consumed_messages(sessions: sessionmaker[Session]) -> int:
    """Delete the messages kombu's SQL transport has handed out; it never deletes them itself.

    A message is marked invisible when a worker takes it, and a worker that dies before
    acknowledging it sends it again as a new row, so invisible rows are never read again.
    """
    with unit_of_work(sessions) as session:
        result = session.execute(repository.PURGE_CONSUMED_MESSAGES)
        return int(getattr(result, "rowcount", 0))


def delivery_sender(app: Celery) -> SendDelivery:
    """Hands a delivery to the workers as a `deliver` task; raises if the broker is down."""

    def send(delivery_id: str) -> None:
        app.send_task(
            DELIVER_WEBHOOK, args=(delivery_id,), retry=True, retry_policy=SEND_RETRY_POLICY
        )

    return send


def request_relay(app: Celery) -> bool:
    """Ask for a relay now, e.g. right after a commit that emitted events.

    Optional: the periodic relay picks the events up within a second anyway. Returns False
    (and only logs) when the broker cannot be reached.
    """
    try:
        app.send_task(RELAY_OUTBOX, retry=True, retry_policy=SEND_RETRY_POLICY)
    except Exception as error:  # whatever the broker raised, the events wait in the outbox
        log.warning("could not request an outbox relay: %s", error)
        return False
    return True
