"""The webhooks area's errors."""

from wallet.errors import InvalidRequest, NotFound


class InvalidWebhookUrl(InvalidRequest):
    problem = "invalid-webhook-url"
    title = "The webhook URL is not a valid http(s) URL"


class UnknownEventTypes(InvalidRequest):
    problem = "unknown-event-types"
    title = "Unknown event types"


class InvalidDeliveryPage(InvalidRequest):
    problem = "invalid-delivery-page"
    title = "The page of deliveries asked for is not valid"


class UnknownWebhookEndpoint(NotFound):
    problem = "unknown-webhook-endpoint"
    title = "No such webhook endpoint"


class UnknownWebhookDelivery(NotFound):
    problem = "unknown-webhook-delivery"
    title = "No such webhook delivery"


class WebhookDestinationNotAllowed(InvalidRequest):
    problem = "webhook-destination-not-allowed"
    title = "The webhook URL does not name a public internet host"
