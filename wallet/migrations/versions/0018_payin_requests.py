"""Pay-in requests recorded many in one statement (`payins_once`): their keys claimed and
replayed as transfers' and withdrawals' are, the wallet and bank account checked, the pay-ins
written `creating`.

Revision ID: 0018
Revises: 0017
"""

from alembic import op
from alembic_utils.reversible_op import CreateOp

from wallet import sql

revision = "0018"
down_revision = "0017"


def upgrade() -> None:
    op.invoke(CreateOp(sql.function("payins_once")))
