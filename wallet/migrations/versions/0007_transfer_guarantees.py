"""Transfers share-lock their wallets, whole amounts only, refused transfers keep their key.

`transfer_apply` share-locks the wallets before the accounts, so a freeze waits for the
transfers in flight; `ledger_apply` refuses fractional amounts; `transfer_once` refuses a key
given twice in one call and stores a refusal under its key in the same statement.

Revision ID: 0007
Revises: 0006
"""

from alembic import op
from alembic_utils.reversible_op import ReplaceOp

from wallet import sql

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    for name in ("ledger_apply", "transfer_apply", "transfer_once"):
        op.invoke(ReplaceOp(sql.function(name)))
