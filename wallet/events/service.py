"""The transactional outbox: an event is a row written in the transaction of its change.

Nothing leaves the process here: the row commits or rolls back with the change, and the relay
(`wallet.webhooks.dispatch`) turns committed rows into webhook deliveries afterwards.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from wallet.events.types import is_event_type
from wallet.ids import new_id

EVENT_PREFIX = "evt"


class UnknownEventType(ValueError):
    """An event type missing from the registry: a programming error, not a request's."""


@dataclass(frozen=True)
class Event:
    """An event of a tenant, to be recorded with the change it announces."""

    tenant_id: str
    event_type: str
    data: Mapping[str, Any]


# One JSON document for the batch: arrays of JSON strings would cost more to send than to write.
# Rows are inserted in the order given, so the relay delivers a batch's events in that order.
_INSERT = text(
    "INSERT INTO outbox (event_id, tenant_id, event_type, payload) "
    "SELECT e.event ->> 'event_id', e.event ->> 'tenant_id', e.event ->> 'event_type', "
    "e.event -> 'payload' "
    "FROM jsonb_array_elements(CAST(:events AS jsonb)) WITH ORDINALITY AS e(event, position) "
    "ORDER BY e.position"
)


def emit(session: Session, *, tenant_id: str, event_type: str, data: dict[str, Any]) -> str:
    """Record an event of the tenant in the caller's transaction; returns its id (`evt_...`).

    `data` must be JSON; datetimes and decimals are written as ISO strings and decimal strings.
    """
    (event_id,) = emit_many(session, [Event(tenant_id, event_type, data)])
    return event_id


def emit_many(session: Session, events: Sequence[Event]) -> list[str]:
    """Record `events` in the caller's transaction with one statement, in order; their ids."""
    for event in events:
        if not is_event_type(event.event_type):
            raise UnknownEventType(f"{event.event_type!r} is not a registered event type")
    if not events:
        return []
    event_ids = [new_id(EVENT_PREFIX) for _ in events]
    rows = [
        {
            "event_id": event_id,
            "tenant_id": event.tenant_id,
            "event_type": event.event_type,
            "payload": dict(event.data),
        }
        for event_id, event in zip(event_ids, events, strict=True)
    ]
    document = json.dumps(rows, default=_json_value, separators=(",", ":"))
    session.execute(_INSERT, {"events": document})
    return event_ids


def _json_value(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"an event's data cannot hold a {type(value).__name__}")
