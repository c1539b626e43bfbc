"""Webhook endpoints: the tenant's URLs, the events each wants, and deliveries to them."""

from typing import Annotated, cast

from fastapi import APIRouter, Depends, Path, Request, Response

from wallet.api.auth import Operator, Reader
from wallet.api.contract import link
from wallet.api.dependencies import DbSession, known_query_parameters, runtime
from wallet.api.fields import id_pattern
from wallet.api.pagination import (
    Limit,
    Page,
    Position,
    cursor_query,
    decode_cursor,
    page_and_cursor,
)
from wallet.api.problems import problem_responses
from wallet.webhooks.models import DELIVERY_PREFIX, ENDPOINT_PREFIX
from wallet.webhooks.schemas import (
    CreatedWebhookEndpoint,
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointOut,
)
from wallet.webhooks.secrets import SecretBox
from wallet.webhooks.service import (
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    list_deliveries,
    list_endpoints,
)

router = APIRouter(
    dependencies=[Depends(known_query_parameters)],
    prefix="/v1/webhook-endpoints",
    tags=["webhook-endpoints"],
    responses=problem_responses(400, 401, 403, 422, 500),
)

EndpointIdPath = Annotated[
    str,
    Path(pattern=id_pattern(ENDPOINT_PREFIX), description="A webhook endpoint id (`whe_...`)."),
]


_ID = "$response.body#/id"


@router.post(
    "",
    status_code=201,
    summary="Add a webhook endpoint",
    responses={
        201: {
            "links": {
                "GetEndpoint": link("webhook_endpoints_get", "The endpoint.", endpoint_id=_ID),
                "ListEndpoints": link("webhook_endpoints_list", "The tenant's endpoints."),
                "ListDeliveries": link(
                    "webhook_endpoints_list_deliveries", "Its deliveries.", endpoint_id=_ID
                ),
                "DeleteEndpoint": link(
                    "webhook_endpoints_delete", "Delete the endpoint.", endpoint_id=_ID
                ),
            }
        }
    },
)
def create(
    body: WebhookEndpointCreate, principal: Operator, session: DbSession, request: Request
) -> CreatedWebhookEndpoint:
    secrets = cast(SecretBox, request.app.state.secret_box)
    settings = runtime(request).settings
    endpoint, secret = create_endpoint(
        session,
        principal.tenant_id,
        body.url,
        body.event_types,
        secrets=secrets,
        allow_private_targets=settings.webhook_private_targets_allowed,
    )
    return CreatedWebhookEndpoint(**WebhookEndpointOut.of(endpoint).model_dump(), secret=secret)


@router.get("", name="list", summary="List webhook endpoints")
def list_all(principal: Reader, session: DbSession) -> WebhookEndpointList:
    """The tenant's endpoints, oldest first."""
    endpoints = list_endpoints(session, principal.tenant_id)
    return WebhookEndpointList(data=[WebhookEndpointOut.of(endpoint) for endpoint in endpoints])


@router.get("/{endpoint_id}", summary="Get a webhook endpoint", responses=problem_responses(404))
def get(endpoint_id: EndpointIdPath, principal: Reader, session: DbSession) -> WebhookEndpointOut:
    return WebhookEndpointOut.of(get_endpoint(session, principal.tenant_id, endpoint_id))


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a webhook endpoint",
    responses=problem_responses(404),
)
def delete(endpoint_id: EndpointIdPath, principal: Operator, session: DbSession) -> None:
    """Stop sending to the endpoint; its deliveries still pending are given up."""
    delete_endpoint(session, principal.tenant_id, endpoint_id)


@router.get(
    "/{endpoint_id}/deliveries",
    name="list_deliveries",
    summary="List an endpoint's deliveries",
    responses=problem_responses(404),
)
def deliveries(
    endpoint_id: EndpointIdPath,
    principal: Reader,
    session: DbSession,
    limit: Limit = 50,
    cursor: Annotated[str | None, cursor_query(id_pattern(DELIVERY_PREFIX))] = None,
) -> Page[WebhookDeliveryOut]:
    """The endpoint's deliveries, newest first, with the outcome of their latest attempt."""
    before = decode_cursor(cursor) if cursor is not None else None
    found = list_deliveries(
        session,
        principal.tenant_id,
        endpoint_id,
        limit=limit + 1,
        before=None if before is None else (before.created_at, before.id),
    )
    page, next_cursor = page_and_cursor(found, limit, lambda d: Position(d.created_at, d.id))
    return Page(data=[WebhookDeliveryOut.of(d) for d in page], next_cursor=next_cursor)
