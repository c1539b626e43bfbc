"""An account found by one statement once it exists (`ledger_account` inserted first, then
looked the account up: two statements at every use).

Revision ID: 0020
Revises: 0019
"""

from alembic import op
from alembic_utils.reversible_op import ReplaceOp

from wallet import sql

revision = "0020"
down_revision = "0019"


def upgrade() -> None:
    op.invoke(ReplaceOp(sql.function("ledger_account")))
