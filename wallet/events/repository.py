"""The outbox's one statement."""

from sqlalchemy import text
from sqlalchemy.orm import Session

# One JSON document for the batch: arrays of JSON strings would cost more to send than to write.
# Rows are inserted in the order given, so the relay delivers a batch's events in that order.
_INSERT = text(
    "INSERT INTO outbox (event_id, tenant_id, event_type, payload) "
    "SELECT e.event ->> 'event_id', e.event ->> 'tenant_id', e.event ->> 'event_type', "
    "e.event -> 'payload' "
    "FROM jsonb_array_elements(CAST(:events AS jsonb)) WITH ORDINALITY AS e(event, position) "
    "ORDER BY e.position"
)


def insert_events(session: Session, events: str) -> None:
    """Insert a JSON list of {event_id, tenant_id, event_type, payload}, in its order."""
    session.execute(_INSERT, {"events": events})
