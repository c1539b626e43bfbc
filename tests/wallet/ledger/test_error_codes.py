"""The failures the database functions return and the ErrorCode enum name the same codes."""

import re

from wallet import sql
from wallet.ledger.errors import ErrorCode

ERROR_KEY = re.compile(r"'error'")
RETURNED_CODE = re.compile(r"'error',\s*'(\w+)'")


def returned_codes() -> set[str]:
    codes: set[str] = set()
    for path in sorted(sql.SOURCES.rglob("*.sql")):
        text = path.read_text()
        found = RETURNED_CODE.findall(text)
        # Every `'error'` key is followed by its code as a literal, so none escapes the scan.
        assert len(found) == len(ERROR_KEY.findall(text)), path.name
        codes.update(found)
    return codes


def test_every_code_the_sql_returns_is_in_the_enum() -> None:
    assert returned_codes() - {code.value for code in ErrorCode} == set()


def test_every_code_of_the_enum_is_returned_by_the_sql() -> None:
    assert {code.value for code in ErrorCode} - returned_codes() == set()
