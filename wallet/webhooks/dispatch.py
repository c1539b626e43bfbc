"""Dispatch: committed outbox rows become webhook deliveries, handed to the workers.

The relay works in batches, each one transaction: lock unrelayed rows (SKIP LOCKED, so relays
may run side by side), create one delivery per event and subscribed endpoint, mark the rows
relayed, commit. Only then are deliver tasks sent. A delivery's row is the truth and a task
only a nudge: if the broker is down the deliveries wait in the database, and the sweep hands
over those that are due and have no task on its way, so nothing is lost.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from wallet.database import run_transaction
from wallet.events.service import matches
from wallet.ids import new_id
from wallet.webhooks import repository
from wallet.webhooks.models import DELIVERY_PREFIX

log = logging.getLogger(__name__)

# Hands a delivery id to the workers (in production, sends a deliver task to the broker).
SendDelivery = Callable[[str], None]


class EventRef(NamedTuple):
    event_id: str
    tenant_id: str
    event_type: str


@dataclass(frozen=True)
class RelayReport:
    events: int
    deliveries: int
    handed_over: int


def relay_outbox(
    sessions: sessionmaker[Session],
    send: SendDelivery,
    *,
    batch_size: int = 200,
    max_batches: int = 10,
) -> RelayReport:
    """Relay up to `max_batches` batches of committed events; the rest wait for the next run."""
    events = deliveries = handed_over = 0
    for _ in range(max_batches):
        batch_events, created = run_transaction(
            sessions, lambda session: _relay_batch(session, batch_size)
        )
        events += batch_events
        deliveries += len(created)
        handed_over += hand_over(sessions, created, send)
        if batch_events < batch_size:
            break
    return RelayReport(events=events, deliveries=deliveries, handed_over=handed_over)


def _relay_batch(session: Session, batch_size: int) -> tuple[int, list[str]]:
    rows = session.execute(
        repository.LOCK_UNRELAYED,
        {"limit": batch_size},
    ).all()
    if not rows:
        return 0, []
    created = create_deliveries(
        session, [EventRef(row.event_id, row.tenant_id, row.event_type) for row in rows]
    )
    session.execute(
        repository.MARK_RELAYED,
        {"ids": [row.id for row in rows]},
    )
    return len(rows), created


def create_deliveries(session: Session, events: Sequence[EventRef]) -> list[str]:
    """One pending delivery per event and live endpoint of its tenant subscribed to its type.

    Returns the ids created (a pair that already has its delivery is skipped), marked as
    handed over: the caller sends them once its transaction commits.
    """
    tenants = sorted({event.tenant_id for event in events})
    endpoints = session.execute(
        repository.LIVE_ENDPOINTS,
        {"tenants": tenants},
    ).all()
    pairs = [
        (event.event_id, endpoint.id)
        for event in events
        for endpoint in endpoints
        if endpoint.tenant_id == event.tenant_id and matches(endpoint.event_types, event.event_type)
    ]
    if not pairs:
        return []
    created = session.execute(
        repository.INSERT_DELIVERIES,
        {
            "ids": [new_id(DELIVERY_PREFIX) for _ in pairs],
            "events": [event_id for event_id, _ in pairs],
            "endpoints": [endpoint_id for _, endpoint_id in pairs],
        },
    ).scalars()
    return list(created)


def hand_over(
    sessions: sessionmaker[Session], delivery_ids: Sequence[str], send: SendDelivery
) -> int:
    """Send a deliver task for each committed delivery; returns how many were sent.

    When sending fails (the broker is down), the rest are marked as not handed over so the
    next sweep sends them; they stay pending, with their due time, in the database.
    """
    for sent, delivery_id in enumerate(delivery_ids):
        try:
            send(delivery_id)
        except Exception as error:  # whatever the broker raised, the row waits in the database
            log.warning(
                "could not hand over %d webhook deliveries, the sweep will: %s",
                len(delivery_ids) - sent,
                error,
            )
            _forget_hand_over(sessions, delivery_ids[sent:])
            return sent
    return len(delivery_ids)


def sweep_due_deliveries(
    sessions: sessionmaker[Session],
    send: SendDelivery,
    *,
    batch_size: int = 500,
    requeue_after: float = 120.0,
) -> int:
    """Hand over the pending deliveries that are due and have no task on its way.

    A task counts as lost once it has been on its way for `requeue_after` seconds (a broker
    that restarted empty, a worker killed before it ran), and the delivery is sent again.
    """

    def claim(session: Session) -> list[str]:
        return list(
            session.execute(
                repository.CLAIM_DUE,
                {"requeue": float(requeue_after), "limit": batch_size},
            ).scalars()
        )

    due = run_transaction(sessions, claim)
    return hand_over(sessions, due, send) if due else 0


def _forget_hand_over(sessions: sessionmaker[Session], delivery_ids: Sequence[str]) -> None:
    try:
        run_transaction(
            sessions,
            lambda session: session.execute(
                repository.FORGET_HAND_OVER,
                {"ids": list(delivery_ids)},
            ),
        )
    except SQLAlchemyError as error:
        # Without the database too, the sweep sends them once `requeue_after` has passed.
        log.warning("could not mark webhook deliveries as not handed over: %s", error)
