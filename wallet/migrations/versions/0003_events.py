"""Events out: the transactional outbox, webhook endpoints, deliveries and their attempts.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.execute(
        """
        -- Written in the transaction of the change it announces; the relay marks it relayed
        -- once the deliveries it calls for exist.
        CREATE TABLE outbox (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id text NOT NULL UNIQUE,
            tenant_id text NOT NULL REFERENCES tenants,
            event_type text NOT NULL,
            payload jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            relayed_at timestamptz
        );
        CREATE INDEX outbox_unrelayed ON outbox (id) WHERE relayed_at IS NULL;

        -- The signing secret is kept only encrypted (AES-256-GCM under a key from the
        -- settings, bound to the endpoint id); see wallet/webhooks/secrets.py.
        CREATE TABLE webhook_endpoints (
            id text PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants,
            url text NOT NULL,
            event_types text[] NOT NULL CHECK (cardinality(event_types) > 0),
            secret_ciphertext bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            deleted_at timestamptz
        );
        CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at)
            WHERE deleted_at IS NULL;

        -- One row per (event, endpoint). While pending, next_attempt_at is when it is due; a
        -- worker claims it by pushing next_attempt_at forward by a lease. enqueued_at says a
        -- deliver task was handed to the broker for it (the sweep sends another if that one
        -- is lost).
        CREATE TABLE webhook_deliveries (
            id text PRIMARY KEY,
            event_id text NOT NULL REFERENCES outbox (event_id),
            endpoint_id text NOT NULL REFERENCES webhook_endpoints,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'delivered', 'failed')),
            attempt_count integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz DEFAULT now(),
            enqueued_at timestamptz,
            first_attempted_at timestamptz,
            last_status_code integer,
            last_error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            delivered_at timestamptz,
            UNIQUE (event_id, endpoint_id),
            CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL)),
            CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
        );
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
            WHERE status = 'pending';
        CREATE INDEX webhook_deliveries_endpoint
            ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);

        CREATE TABLE webhook_attempts (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            delivery_id text NOT NULL REFERENCES webhook_deliveries,
            attempt_number integer NOT NULL CHECK (attempt_number > 0),
            attempted_at timestamptz NOT NULL,
            status_code integer,
            error text,
            duration_ms integer NOT NULL CHECK (duration_ms >= 0)
        );
        CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
        """
    )
