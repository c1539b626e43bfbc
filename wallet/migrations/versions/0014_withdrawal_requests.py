"""Withdrawal requests in one statement for many (`withdrawals_once`), claiming and replaying
their keys as transfers do (`idempotency_claim`, `idempotency_replay`, now `transfer_once`'s
too); holds released many at a time (`ledger_void_holds`), as the watcher settles withdrawals.

Revision ID: 0014
Revises: 0013
"""

from alembic import op
from alembic_utils.reversible_op import ReplaceOp

from wallet import sql

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    functions = (
        "idempotency_claim",
        "idempotency_replay",
        "transfer_once",
        "ledger_void_holds",
        "withdrawals_once",
    )
    for name in functions:
        op.invoke(ReplaceOp(sql.function(name)))
