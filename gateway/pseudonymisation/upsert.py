"""Insert-if-absent without savepoints: `INSERT ... ON CONFLICT DO NOTHING` on SQLite and
PostgreSQL, so concurrent writers of the same unique row neither fail nor duplicate it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


def insert_if_absent(session: Session, model: type[SQLModel], values: dict[str, Any]) -> bool:
    """Insert the row unless its unique key is taken; True when this call inserted it. On
    PostgreSQL a conflicting insert still in flight is waited for (then nothing is inserted)."""
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(**values).on_conflict_do_nothing()
    # RETURNING tells whether a row went in (psycopg reports no rowcount for this statement)
    inserted = session.execute(statement.returning(*table.primary_key.columns)).first()
    return inserted is not None
