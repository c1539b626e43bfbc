"""The database functions and triggers, installed from their sources in wallet/sql/.

On a new database this creates them; on one migrated before, it replaces the definitions that
revisions 0001 and 0005 used to carry inline with the same ones read from the sources.

Revision ID: 0006
Revises: 0005
"""

from alembic import op
from alembic_utils.reversible_op import ReplaceOp

from wallet import sql

revision = "0006"
down_revision = "0005"

FUNCTIONS = (
    "ledger_reject_change",
    "ledger_check_balanced",
    "ledger_apply",
    "ledger_hold",
    "ledger_resolve_hold",
    "transfer_apply",
    "transfer_once",
)
TRIGGERS = ("postings_append_only", "transactions_append_only", "postings_balanced")


def upgrade() -> None:
    # Replacing creates what is missing: a function with CREATE OR REPLACE, a trigger by
    # dropping it if it exists and creating it.
    for name in FUNCTIONS:
        op.invoke(ReplaceOp(sql.function(name)))
    for name in TRIGGERS:
        op.invoke(ReplaceOp(sql.trigger(name)))
