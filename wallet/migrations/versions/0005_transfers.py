"""Transfers between a tenant's wallets as database functions (transfer_apply, transfer_once).

The functions are installed from wallet/sql/ by revision 0006; this revision stays in the
history because databases migrated before then record it.

Revision ID: 0005
Revises: 0004
"""

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    """Nothing left to do here: see revision 0006."""
