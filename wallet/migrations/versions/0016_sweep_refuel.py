"""A token sweep whose deposit address cannot pay a fee bump of its transfer gets more gas from
the hot wallet first: the status `refuel_requested`, open like the others.

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE sweeps DROP CONSTRAINT sweeps_status_check;
        ALTER TABLE sweeps ADD CONSTRAINT sweeps_status_check CHECK (status IN (
            'gas_requested', 'gas_confirmed', 'sweep_sent', 'refuel_requested',
            'sweep_confirmed', 'failed'));
        DROP INDEX sweeps_open;
        CREATE INDEX sweeps_open ON sweeps (chain, source)
            WHERE status IN ('gas_requested', 'gas_confirmed', 'sweep_sent', 'refuel_requested');
        """
    )
