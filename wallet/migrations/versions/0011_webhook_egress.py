"""Webhook attempts in flight, and endpoints paused after failing again and again.

`leased_until` marks a delivery a worker is attempting (until its lease ends), so claims can
count the attempts in flight per endpoint and per tenant; an endpoint whose attempts keep
failing is paused until `paused_until`, its deliveries waiting meanwhile.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE webhook_deliveries ADD COLUMN leased_until timestamptz;
        CREATE INDEX webhook_deliveries_in_flight ON webhook_deliveries (endpoint_id)
            WHERE leased_until IS NOT NULL;
        ALTER TABLE webhook_endpoints
            ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0
                CHECK (consecutive_failures >= 0),
            ADD COLUMN paused_until timestamptz;
        """
    )
