"""The declarative base for the typed models of every area, and the column types they share.

The tables come from the migrations; each area's `models.py` describes its tables as they
create them: `str` is `text`, `datetime` is `timestamptz`, amounts are `Units`.
"""

import importlib
import pkgutil
from datetime import datetime
from decimal import Decimal

from sqlalchemy import DateTime, Dialect, Numeric, Text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

import wallet


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads it from the class
        str: Text(),
        datetime: DateTime(timezone=True),
    }


class Units(TypeDecorator[int]):
    """An amount in minor units: NUMERIC(78,0) in PostgreSQL, int in Python (never Decimal)."""

    impl = Numeric(78, 0)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)

    def process_result_value(self, value: object, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not isinstance(value, Decimal | int):
            raise TypeError(f"expected a numeric amount, got {type(value).__name__}")
        return int(value)


def load_models() -> None:
    """Import every area's `models` module, so that `Base.metadata` holds every table."""
    for module in pkgutil.walk_packages(wallet.__path__, "wallet."):
        if module.name.endswith(".models"):
            importlib.import_module(module.name)
