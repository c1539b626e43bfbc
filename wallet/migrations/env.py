"""Alembic environment: the caller (`wallet.database`) hands over an open connection.

Autogenerate and `alembic check` compare the database with every area's models and with the
functions and triggers of wallet/sql/.
"""

from alembic import context
from alembic_utils.replaceable_entity import register_entities

from wallet import sql
from wallet.models import Base, load_models

register_entities(sql.entities())
load_models()

# Tables of kombu's SQL transport (the embedded profile's broker) share the database.
BROKER_TABLES = {"kombu_message", "kombu_queue"}


def ours(name: str | None, kind: str, parents: object) -> bool:
    return not (kind == "table" and name in BROKER_TABLES)


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_name=ours,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
