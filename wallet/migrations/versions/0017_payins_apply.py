"""Many pay-in snapshots moved in one statement (`payins_apply`): a webhook delivery's events,
stored once by id with their outcomes, or the provider's answers to one call.

Revision ID: 0017
Revises: 0016
"""

from alembic import op
from alembic_utils.reversible_op import CreateOp

from wallet import sql

revision = "0017"
down_revision = "0016"


def upgrade() -> None:
    op.invoke(CreateOp(sql.function("payins_apply")))
