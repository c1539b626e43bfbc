"""What is posted for an event: the Standard Webhooks body and its signed headers."""

import json
import math
from datetime import UTC, datetime
from typing import Any, Final

from standardwebhooks import Webhook

USER_AGENT: Final = "wallet-webhooks/1"


def event_body(event_id: str, event_type: str, created_at: datetime, data: Any) -> str:
    """The JSON posted for an event (the Standard Webhooks shape, plus the event id)."""
    timestamp = created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    envelope = {"id": event_id, "type": event_type, "timestamp": timestamp, "data": data}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def signed_headers(secret: bytes, event_id: str, body: str, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for posting `body` at `now`."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(math.floor(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=event_id, timestamp=now, data=body),
    }
