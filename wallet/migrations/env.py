"""Alembic environment: the caller (`wallet.database.migrate`) hands over an open connection.

The functions and triggers of wallet/sql/ are registered so that autogenerate (and
`alembic check`) compares the database with them.
"""

from alembic import context
from alembic_utils.replaceable_entity import register_entities

from wallet import sql

register_entities(sql.entities())

connection = context.config.attributes["connection"]
context.configure(connection=connection, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
