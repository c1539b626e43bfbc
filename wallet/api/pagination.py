"""Cursor pagination: newest first, a cursor naming where the last page ended.

The schema gives each list's cursor pattern, which the server enforces: any cursor matching
it names a position (possibly one no page ended at, which is harmless).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

MAX_LIMIT = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

T = TypeVar("T")
Item = TypeVar("Item")


@dataclass(frozen=True)
class Position:
    """The sort key of the last item of a page: its time and id."""

    created_at: datetime
    id: str


Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, at most {MAX_LIMIT}.")
]


def cursor_pattern(id_pattern: str) -> str:
    """A cursor: the last item's time in microseconds since 1970 (UTC), `-`, and its id."""
    return f"^[0-9]{{1,17}}-{id_pattern.removeprefix('^')}"


def cursor_query(id_pattern: str) -> Any:
    """The `cursor` query parameter of a list whose items' ids match `id_pattern`."""
    return Query(
        pattern=cursor_pattern(id_pattern),
        description="`next_cursor` of the previous page; omit for the first.",
    )


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null after the last page."
    )


def encode_cursor(position: Position) -> str:
    since_epoch = position.created_at - _EPOCH
    micros = (since_epoch.days * 86_400 + since_epoch.seconds) * 10**6 + since_epoch.microseconds
    return f"{micros}-{position.id}"


def decode_cursor(cursor: str) -> Position:
    """The position named by a cursor that matches its `cursor_pattern`."""
    micros, item_id = cursor.split("-", 1)
    return Position(_EPOCH + timedelta(microseconds=int(micros)), item_id)


def resume_after(cursor: str | None) -> tuple[datetime, str] | None:
    """Where the page asked for starts: after this (created_at, id), or at the newest."""
    if cursor is None:
        return None
    position = decode_cursor(cursor)
    return position.created_at, position.id


def page_and_cursor(
    found: Sequence[Item], limit: int, position: Callable[[Item], Position]
) -> tuple[Sequence[Item], str | None]:
    """Split the `limit + 1` items a query fetched into the page and the next page's cursor."""
    page = found[:limit]
    return page, encode_cursor(position(page[-1])) if len(found) > limit else None
