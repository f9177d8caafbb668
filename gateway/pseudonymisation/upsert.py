"""Insert-if-absent without savepoints: `INSERT ... ON CONFLICT DO NOTHING` on SQLite and
PostgreSQL, so concurrent writers of the same unique row neither fail nor duplicate it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


def insert_if_absent(session: Session, model: type[SQLModel], values: dict[str, Any]) -> None:
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).values(**values).on_conflict_do_nothing())
