"""A pay-in moved to a provider's snapshot in one statement (`payin_apply`), with the accounts
it books against opened on first use (`ledger_account`) and the ledger's answers checked
(`ledger_checked`).

Revision ID: 0015
Revises: 0014
"""

from alembic import op
from alembic_utils.reversible_op import ReplaceOp

from wallet import sql

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    for name in ("ledger_account", "ledger_checked", "payin_apply"):
        op.invoke(ReplaceOp(sql.function(name)))
