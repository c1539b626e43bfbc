"""The webhooks area's shared statements."""

from typing import Final

from sqlalchemy import text
from sqlalchemy.orm import Session

from wallet.events.service import matches

ENDPOINT_DELETED: Final = "endpoint deleted"

_GIVE_UP = text(
    """
    UPDATE webhook_deliveries
    SET status = 'failed', next_attempt_at = NULL, last_error = :reason
    WHERE endpoint_id = :endpoint AND status = 'pending'
      AND (CAST(:delivery AS text) IS NULL OR id = :delivery)
    """
)


def give_up_for_deleted_endpoint(
    session: Session, endpoint_id: str, delivery_id: str | None = None
) -> None:
    """Fail the pending deliveries of a deleted endpoint: all of them, or the one given."""
    params = {"endpoint": endpoint_id, "delivery": delivery_id, "reason": ENDPOINT_DELETED}
    session.execute(_GIVE_UP, params)


def subscribed_tenants(session: Session, event_type: str) -> list[str]:
    """The tenants with a live endpoint subscribed to `event_type`: who hears of an event that
    is no one tenant's own (a chain halted), one outbox row each."""
    rows = session.execute(
        text("SELECT tenant_id, event_types FROM webhook_endpoints WHERE deleted_at IS NULL")
    ).all()
    return sorted({row.tenant_id for row in rows if matches(row.event_types, event_type)})
