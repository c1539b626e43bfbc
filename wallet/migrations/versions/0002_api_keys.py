"""API keys: hashed secrets, scopes, each bound to one tenant.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_keys (
            id text PRIMARY KEY,
            tenant_id text NOT NULL REFERENCES tenants,
            secret_hash text NOT NULL UNIQUE,
            scopes text[] NOT NULL,
            label text,
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        );
        CREATE INDEX api_keys_tenant ON api_keys (tenant_id);
        """
    )
