"""Alembic environment: the caller (`wallet.database.migrate`) hands over an open connection."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
