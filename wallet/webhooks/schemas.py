"""Webhook endpoints and deliveries as the API shows them; the endpoint request."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from wallet.events.service import EVENT_TYPES, subscriptions
from wallet.webhooks.models import DeliveryStatus
from wallet.webhooks.service import (
    MAX_URL_LENGTH,
    URL_PATTERN,
    WebhookDelivery,
    WebhookEndpoint,
)

EventTypePattern = Annotated[str, Field(json_schema_extra={"enum": list(subscriptions())})]


_EVENT_TYPES_DESCRIPTION = (
    "Event types to receive: exact (`transfer.created`), a family (`deposit.*`) or all (`*`). "
    "Known types: " + ", ".join(f"`{name}`" for name in EVENT_TYPES) + "."
)


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH)] = Field(
        json_schema_extra={"pattern": URL_PATTERN},
        examples=["https://app.example/webhooks/wallet"],
    )
    event_types: list[EventTypePattern] = Field(
        min_length=1, max_length=50, description=_EVENT_TYPES_DESCRIPTION
    )


class WebhookEndpointOut(BaseModel):
    id: str = Field(examples=["whe_mfrggzdfmztwq2lknnwg23tpobyxe43u"])
    url: str
    event_types: list[str]
    created_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> "WebhookEndpointOut":
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            event_types=list(endpoint.event_types),
            created_at=endpoint.created_at.astimezone(UTC),
        )


class CreatedWebhookEndpoint(WebhookEndpointOut):
    secret: str = Field(
        description="The signing secret (`whsec_...`) of the Standard Webhooks signatures on "
        "this endpoint's deliveries. Shown only in this response: store it now."
    )


class WebhookEndpointList(BaseModel):
    data: list[WebhookEndpointOut]


class WebhookDeliveryOut(BaseModel):
    """One event's delivery to the endpoint: retried with backoff until delivered or given up."""

    id: str = Field(examples=["whd_mfrggzdfmztwq2lknnwg23tpobyxe43u"])
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> "WebhookDeliveryOut":
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            status=delivery.status,
            attempt_count=delivery.attempt_count,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            next_attempt_at=_utc(delivery.next_attempt_at),
            created_at=delivery.created_at.astimezone(UTC),
            delivered_at=_utc(delivery.delivered_at),
        )


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)
