"""The transactional outbox: an event is a row written in the transaction of its change.

Nothing leaves the process here: the row commits or rolls back with the change, and the relay
(`wallet.events.relay`) turns committed rows into webhook deliveries afterwards.
"""

import json
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


_INSERT = text(
    "INSERT INTO outbox (event_id, tenant_id, event_type, payload) "
    "VALUES (:event_id, :tenant_id, :event_type, CAST(:payload AS jsonb))"
)


def emit(session: Session, *, tenant_id: str, event_type: str, data: dict[str, Any]) -> str:
    """Record an event of the tenant in the caller's transaction; returns its id (`evt_...`).

    `data` must be JSON; datetimes and decimals are written as ISO strings and decimal strings.
    """
    if not is_event_type(event_type):
        raise UnknownEventType(f"{event_type!r} is not a registered event type")
    event_id = new_id(EVENT_PREFIX)
    payload = json.dumps(data, default=_json_value, separators=(",", ":"))
    session.execute(
        _INSERT,
        {
            "event_id": event_id,
            "tenant_id": tenant_id,
            "event_type": event_type,
            "payload": payload,
        },
    )
    return event_id


def _json_value(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"an event's data cannot hold a {type(value).__name__}")
