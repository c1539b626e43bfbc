"""The migrated database holds exactly the functions and triggers of wallet/sql/."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic_utils.replaceable_entity import register_entities
from sqlalchemy import Connection, Engine, MetaData

from wallet import sql


def entity_drift(connection: Connection) -> set[tuple[str, str]]:
    """What autogenerate would do to the functions and triggers, as (operation, entity)."""
    register_entities(sql.entities())
    diffs = compare_metadata(
        MigrationContext.configure(connection, opts={"include_schemas": False}), MetaData()
    )
    return {(diff[0], diff[1]) for diff in diffs if str(diff[0]).endswith("_entity")}


def test_the_migrated_database_matches_the_sources(engine: Engine) -> None:
    with engine.connect() as connection, connection.begin() as transaction:
        drift = entity_drift(connection)
        transaction.rollback()
    assert drift == set()


def test_a_database_that_differs_from_the_sources_shows_drift(engine: Engine) -> None:
    with engine.connect() as connection, connection.begin() as transaction:
        connection.exec_driver_sql(
            "ALTER FUNCTION ledger_apply(jsonb, boolean) RESET plan_cache_mode;"
            "DROP TRIGGER postings_balanced ON postings;"
            "CREATE FUNCTION stray() RETURNS integer LANGUAGE sql AS 'SELECT 1'"
        )
        drift = entity_drift(connection)
        transaction.rollback()
    assert drift == {
        (
            "replace_or_revert_entity",
            "PGFunction: public.ledger_apply(p_transactions jsonb, p_atomic boolean)",
        ),
        ("create_entity", "PGTrigger: public.postings_balanced False public.postings"),
        ("drop_entity", "PGFunction: public.stray()"),
    }
