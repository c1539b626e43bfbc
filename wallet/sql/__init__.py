"""The database functions and triggers, one file each under `functions/` and `triggers/`.

These files are the only definitions: migrations install them from here, and autogenerate
compares the database with them (alembic-utils entities).
"""

from pathlib import Path

from alembic_utils.pg_function import PGFunction
from alembic_utils.pg_trigger import PGTrigger
from alembic_utils.replaceable_entity import ReplaceableEntity

SOURCES = Path(__file__).parent


def function(name: str) -> PGFunction:
    """The function defined in `functions/<name>.sql`."""
    return PGFunction.from_sql(_statement(SOURCES / "functions" / f"{name}.sql"))


def trigger(name: str) -> PGTrigger:
    """The trigger defined in `triggers/<name>.sql`."""
    return PGTrigger.from_sql(_statement(SOURCES / "triggers" / f"{name}.sql"))


def entities() -> list[ReplaceableEntity]:
    """Every function, then every trigger (a trigger needs its function)."""
    functions: list[ReplaceableEntity] = [
        function(path.stem) for path in sorted((SOURCES / "functions").glob("*.sql"))
    ]
    triggers = [trigger(path.stem) for path in sorted((SOURCES / "triggers").glob("*.sql"))]
    return functions + triggers


def _statement(path: Path) -> str:
    """The file's statement, without the comment lines above it."""
    lines = path.read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return "".join(lines)
