"""Withdrawal requests in one statement for many: `withdrawals_once`.

Revision ID: 0014
Revises: 0013
"""

from alembic import op
from alembic_utils.reversible_op import ReplaceOp

from wallet import sql

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    op.invoke(ReplaceOp(sql.function("withdrawals_once")))
