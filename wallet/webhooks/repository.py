"""The webhooks area's shared statements."""

from typing import Final

from sqlalchemy import text
from sqlalchemy.orm import Session

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
