"""The ledger's checks for an external reference or a reversal made before, and the pay-ins
`payins_apply` locks, looked up by index whatever the tables' sizes (their generic plans read
the whole table).

Revision ID: 0019
Revises: 0018
"""

from alembic import op
from alembic_utils.reversible_op import ReplaceOp

from wallet import sql

revision = "0019"
down_revision = "0018"


def upgrade() -> None:
    for name in ("ledger_apply", "payins_apply"):
        op.invoke(ReplaceOp(sql.function(name)))
