"""The declarative base for the typed models of every area."""

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
