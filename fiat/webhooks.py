"""Standard Webhooks for provider events: signing (the sandbox bank) and verifying (our side).

Verification checks the signature and the timestamp (within five minutes, the Standard
Webhooks default) on the raw bytes before a single byte is parsed as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from standardwebhooks import Webhook, WebhookVerificationError

from fiat.errors import WebhookRejected
from fiat.model import ProviderEvent
from fiat.wire import decode_event, encode_event


@dataclass(frozen=True, slots=True)
class SignedDelivery:
    """The exact bytes and headers of one webhook POST."""

    body: bytes
    headers: dict[str, str]


def event_body(event: ProviderEvent) -> bytes:
    """The JSON bytes a webhook carries for `event`."""
    return json.dumps(encode_event(event), separators=(",", ":")).encode()


def sign_body(
    secret: str, event_id: str, body: bytes, at: datetime | None = None
) -> SignedDelivery:
    """Sign `body` for the event `event_id` with `secret` (`whsec_...`) at `at` (now)."""
    moment = at or datetime.now(UTC)
    signature = Webhook(secret).sign(event_id, moment, body.decode())
    return SignedDelivery(
        body=body,
        headers={
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signature,
        },
    )


def sign_event(secret: str, event: ProviderEvent, at: datetime | None = None) -> SignedDelivery:
    """Serialize `event` and sign it, as `sign_body`."""
    return sign_body(secret, event.id, event_body(event), at)


class WebhookVerifier:
    """Turns an inbound webhook into a `ProviderEvent`, or raises `WebhookRejected`."""

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        try:
            self._webhook.verify(body, dict(headers), json_parse=False)
        except (WebhookVerificationError, ValueError) as error:
            # ValueError: malformed base64 or signature list, or a body that is not UTF-8.
            raise WebhookRejected(f"webhook signature refused: {error}") from error
        try:
            event = decode_event(json.loads(body))
        except ValueError as error:
            raise WebhookRejected(f"webhook body is not a provider event: {error}") from error
        webhook_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        if event.id != webhook_id:
            raise WebhookRejected("webhook-id does not match the event id")
        return event
