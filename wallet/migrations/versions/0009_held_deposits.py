"""Deposits held while their wallet is frozen.

A deposit confirmed while its wallet is frozen (or closed) is `held`: still pending in, and
credited when the wallet is unfrozen.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE deposits DROP CONSTRAINT deposits_status_check;
        ALTER TABLE deposits ADD CONSTRAINT deposits_status_check CHECK (
            status IN ('seen', 'credited', 'held', 'orphaned', 'below_minimum', 'reversed'));
        CREATE INDEX deposits_held ON deposits (wallet_id) WHERE status = 'held';
        """
    )
