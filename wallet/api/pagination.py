"""Cursor pagination: newest first, an opaque cursor naming where the last page ended."""

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from wallet.errors import InvalidRequest

MAX_LIMIT = 100

T = TypeVar("T")
Item = TypeVar("Item")


class InvalidCursor(InvalidRequest):
    problem = "invalid-cursor"
    title = "The cursor is not one this API returned"


@dataclass(frozen=True)
class Position:
    """The sort key of the last item of a page: its time and id."""

    created_at: datetime
    id: str


Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, at most {MAX_LIMIT}.")
]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="`next_cursor` of the previous page; omit for the first."),
]


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null after the last page."
    )


def encode_cursor(position: Position) -> str:
    document = json.dumps([position.created_at.isoformat(), position.id])
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, item_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position = Position(datetime.fromisoformat(created_at), str(item_id))
    except (ValueError, TypeError, binascii.Error) as error:
        raise InvalidCursor(f"cursor {cursor!r} is not valid") from error
    if position.created_at.tzinfo is None:
        raise InvalidCursor(f"cursor {cursor!r} is not valid")
    return position


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
