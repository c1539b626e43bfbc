"""The app's webhook endpoints and the record of deliveries to them, per tenant.

Another tenant's endpoint answers exactly like a missing one. Nothing here commits: the
caller's unit of work does.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from sqlalchemy import Row
from sqlalchemy.orm import Session

from wallet.events.service import is_subscription, matches
from wallet.ids import new_id
from wallet.webhooks import repository
from wallet.webhooks.destinations import check_host
from wallet.webhooks.errors import (
    InvalidDeliveryPage,
    InvalidWebhookUrl,
    UnknownEventTypes,
    UnknownWebhookDelivery,
    UnknownWebhookEndpoint,
)
from wallet.webhooks.models import ENDPOINT_PREFIX, DeliveryStatus
from wallet.webhooks.repository import give_up_for_deleted_endpoint
from wallet.webhooks.secrets import SecretBox, new_signing_secret

MAX_URL_LENGTH: Final = 2048
_PORT = "(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
# http(s), a DNS name or an IPv4 address, an optional port, then printable ASCII only: no
# credentials, spaces or control characters. The OpenAPI schema states the same pattern.
URL_PATTERN: Final = (
    "^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?" + _PORT + "(?:[/?#][!-~]*)?$"
)
MAX_DELIVERIES_PAGE: Final = 200


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    url: str
    event_types: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class WebhookDelivery:
    id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class WebhookAttempt:
    attempt_number: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


def create_endpoint(
    session: Session,
    tenant_id: str,
    url: str,
    event_types: Sequence[str],
    *,
    secrets: SecretBox,
    allow_private_targets: bool,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (`whsec_...`), which is shown only this once.

    Unless `allow_private_targets`, the URL must name a public host (see `destinations`).
    """
    _check_url(url, allow_private_targets=allow_private_targets)
    subscribed = _check_event_types(event_types)
    endpoint_id = new_id(ENDPOINT_PREFIX)
    raw_secret, shown_secret = new_signing_secret()
    sealed = secrets.seal(raw_secret, endpoint_id)
    row = session.execute(
        repository.INSERT_ENDPOINT,
        {
            "id": endpoint_id,
            "tenant": tenant_id,
            "url": url,
            "types": list(subscribed),
            "sealed": sealed,
        },
    ).one()
    return _endpoint(row), shown_secret


def list_endpoints(session: Session, tenant_id: str) -> Sequence[WebhookEndpoint]:
    """The tenant's endpoints, oldest first."""
    rows = session.execute(
        repository.TENANT_ENDPOINTS,
        {"tenant": tenant_id},
    ).all()
    return [_endpoint(row) for row in rows]


def get_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    row = session.execute(
        repository.ENDPOINT,
        {"id": endpoint_id, "tenant": tenant_id},
    ).one_or_none()
    if row is None:
        raise UnknownWebhookEndpoint(f"no webhook endpoint {endpoint_id}")
    return _endpoint(row)


def delete_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> None:
    """Stop sending to the endpoint; its pending deliveries are given up."""
    deleted = session.execute(
        repository.DELETE_ENDPOINT,
        {"id": endpoint_id, "tenant": tenant_id},
    ).one_or_none()
    if deleted is None:
        raise UnknownWebhookEndpoint(f"no webhook endpoint {endpoint_id}")
    give_up_for_deleted_endpoint(session, endpoint_id)


def list_deliveries(
    session: Session,
    tenant_id: str,
    endpoint_id: str,
    *,
    limit: int,
    before: tuple[datetime, str] | None,
) -> Sequence[WebhookDelivery]:
    """The endpoint's deliveries, newest first; `before` is the last one of a page (its
    creation time and id)."""
    if not 1 <= limit <= MAX_DELIVERIES_PAGE:
        raise InvalidDeliveryPage(f"limit must be between 1 and {MAX_DELIVERIES_PAGE}")
    get_endpoint(session, tenant_id, endpoint_id)
    params: dict[str, Any] = {"endpoint": endpoint_id, "limit": limit}
    if before is not None:
        params |= {"before_at": before[0], "before_id": before[1]}
    page = repository.DELIVERIES if before is None else repository.DELIVERIES_BEFORE
    rows = session.execute(page, params).all()
    return [_delivery(row) for row in rows]


def get_delivery(session: Session, tenant_id: str, delivery_id: str) -> WebhookDelivery:
    row = session.execute(
        repository.DELIVERY, {"id": delivery_id, "tenant": tenant_id}
    ).one_or_none()
    if row is None:
        raise UnknownWebhookDelivery(f"no webhook delivery {delivery_id}")
    return _delivery(row)


def list_attempts(session: Session, tenant_id: str, delivery_id: str) -> Sequence[WebhookAttempt]:
    """The attempts of one delivery, oldest first."""
    get_delivery(session, tenant_id, delivery_id)
    rows = session.execute(
        repository.DELIVERY_ATTEMPTS,
        {"id": delivery_id},
    ).all()
    return [
        WebhookAttempt(
            attempt_number=row.attempt_number,
            attempted_at=row.attempted_at,
            status_code=row.status_code,
            error=row.error,
            duration_ms=row.duration_ms,
        )
        for row in rows
    ]


def subscribed_tenants(session: Session, event_type: str) -> list[str]:
    """The tenants with a live endpoint subscribed to `event_type`: who hears of an event that
    is no one tenant's own (a chain halted), one outbox row each."""
    rows = session.execute(repository.ALL_LIVE_ENDPOINTS).all()
    return sorted({row.tenant_id for row in rows if matches(row.event_types, event_type)})


def _check_url(url: str, *, allow_private_targets: bool) -> None:
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if re.fullmatch(URL_PATTERN, url) is None:
        raise InvalidWebhookUrl(
            f"{url!r} is not an http(s) URL with a host name or IPv4 address, without "
            "credentials, spaces or control characters"
        )
    # The pattern has made sure there is a host.
    check_host(urlsplit(url).hostname or "", allow_private=allow_private_targets)


def _check_event_types(event_types: Sequence[str]) -> tuple[str, ...]:
    if isinstance(event_types, str) or not event_types:
        raise UnknownEventTypes("subscribe to at least one event type", unknown=[])
    unknown = [name for name in event_types if not is_subscription(name)]
    if unknown:
        raise UnknownEventTypes(
            f"unknown event types: {', '.join(unknown)}", unknown=sorted(set(unknown))
        )
    return tuple(dict.fromkeys(event_types))


def _endpoint(row: Row[Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id, url=row.url, event_types=tuple(row.event_types), created_at=row.created_at
    )


def _delivery(row: Row[Any]) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=DeliveryStatus(row.status),
        attempt_count=row.attempt_count,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )
