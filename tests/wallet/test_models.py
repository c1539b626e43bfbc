"""Every table the migrations create has a model, with the same columns, types and nulls."""

from sqlalchemy import Engine, inspect

from wallet.models import Base, load_models

# Tables of kombu's SQL transport (the embedded profile's broker), not the service's.
FOREIGN_TABLES = {"alembic_version", "kombu_message", "kombu_queue"}


def test_every_table_has_a_model_that_matches_it(engine: Engine) -> None:
    load_models()
    database = inspect(engine)
    tables = set(database.get_table_names()) - FOREIGN_TABLES
    assert tables == set(Base.metadata.tables)
    for name, table in Base.metadata.tables.items():
        columns = {c["name"]: c for c in database.get_columns(name)}
        assert set(columns) == {c.name for c in table.columns}, name
        for column in table.columns:
            found = columns[column.name]
            assert found["nullable"] == column.nullable, (name, column.name)
            declared = column.type.compile(engine.dialect)
            assert found["type"].compile(engine.dialect) == declared, (name, column.name)
        primary_key = database.get_pk_constraint(name)["constrained_columns"]
        assert set(primary_key) == {c.name for c in table.primary_key}, name
