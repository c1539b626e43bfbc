"""Standard Webhooks for provider events: signing (the sandbox bank) and verifying (our side).

A delivery carries one or more events, `{"events": [event, ...]}`, as providers that batch
their webhooks send them (GoCardless, say): one signed POST for what is due at once. Its
`webhook-id` names the delivery, derived from its events' ids so that a retry of the same
events carries the same id; each event keeps its own id, by which the receiver stores it once.

Verification checks the signature and the timestamp (within five minutes, the Standard
Webhooks default) on the raw bytes before a single byte is parsed as JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from standardwebhooks import Webhook, WebhookVerificationError

from fiat.errors import WebhookRejected
from fiat.model import ProviderEvent
from fiat.wire import decode_delivery, encode_event


@dataclass(frozen=True, slots=True)
class SignedDelivery:
    """The exact bytes and headers of one webhook POST."""

    body: bytes
    headers: dict[str, str]


def event_body(event: ProviderEvent) -> bytes:
    """The JSON bytes of one event, as a delivery carries it."""
    return json.dumps(encode_event(event), separators=(",", ":")).encode()


def delivery_body(event_bodies: Sequence[bytes]) -> bytes:
    """The JSON bytes of a delivery of the events `event_bodies` (each as `event_body`)."""
    return b'{"events":[' + b",".join(event_bodies) + b"]}"


def delivery_id(event_ids: Sequence[str]) -> str:
    """The `webhook-id` of a delivery of the events `event_ids`, in that order."""
    return "msg_" + hashlib.sha256(",".join(event_ids).encode()).hexdigest()[:32]


def sign_body(
    secret: str, message_id: str, body: bytes, at: datetime | None = None
) -> SignedDelivery:
    """Sign `body` as the message `message_id` with `secret` (`whsec_...`) at `at` (now)."""
    moment = at or datetime.now(UTC)
    signature = Webhook(secret).sign(message_id, moment, body.decode())
    return SignedDelivery(
        body=body,
        headers={
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signature,
        },
    )


def sign_events(
    secret: str, events: Sequence[ProviderEvent], at: datetime | None = None
) -> SignedDelivery:
    """One delivery of `events`, serialized and signed as `sign_body`."""
    body = delivery_body([event_body(event) for event in events])
    return sign_body(secret, delivery_id([event.id for event in events]), body, at)


class WebhookVerifier:
    """Turns an inbound webhook into its events, or raises `WebhookRejected`."""

    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> tuple[ProviderEvent, ...]:
        try:
            self._webhook.verify(body, dict(headers), json_parse=False)
        except (WebhookVerificationError, ValueError) as error:
            # ValueError: malformed base64 or signature list, or a body that is not UTF-8.
            raise WebhookRejected(f"webhook signature refused: {error}") from error
        try:
            return decode_delivery(json.loads(body))
        except ValueError as error:
            raise WebhookRejected(f"webhook body is not a provider delivery: {error}") from error
