"""What a report covers (dataset, period) and the small SQL helpers every collector shares.

Collectors aggregate in the database (COUNT ... GROUP BY); nothing loads a dataset's rows
into Python, so a report costs a handful of queries whatever the dataset's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, cast, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col

from gateway.core.models import LineageRecord
from gateway.reports.model import Count


@dataclass(frozen=True, slots=True)
class Scope:
    """The dataset (None: every dataset) and the half-open period [start, end)."""

    dataset_id: str | None
    start: datetime | None
    end: datetime | None

    def within(self, stmt: Any, timestamp: Any) -> Any:
        if self.start is not None:
            stmt = stmt.where(timestamp >= self.start)
        if self.end is not None:
            stmt = stmt.where(timestamp < self.end)
        return stmt

    def lineage(self, stmt: Any) -> Any:
        if self.dataset_id is not None:
            stmt = stmt.where(col(LineageRecord.dataset_id) == self.dataset_id)
        return self.within(stmt, col(LineageRecord.created_at))


def run(session: Session, stmt: Any) -> Any:
    """Execute a Core select (typed loosely: SQLModel's overloads stop at a few columns)."""
    return session.exec(stmt)


def json_text(session: Session, column: Any, *path: str) -> ColumnElement[Any]:
    """A JSON field of a text column holding JSON, as text, on SQLite and PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        doc: Any = cast(column, JSONB)
    else:
        doc = type_coerce(column, JSON)
    return doc[path if len(path) > 1 else path[0]].as_string()  # type: ignore[no-any-return]


def counts(session: Session, stmt: Any) -> list[Count]:
    """Rows of (key, count) as sorted Count entries (largest first, then by key)."""
    rows = [(str(key), int(n)) for key, n in run(session, stmt).all() if key is not None]
    return [Count(key=k, count=n) for k, n in sorted(rows, key=lambda r: (-r[1], r[0]))]


def grouped(key: Any, *where: Any) -> Any:
    """SELECT key, COUNT(*) ... GROUP BY key, for `counts`."""
    stmt: Any = select(key, func.count()).group_by(key)
    for clause in where:
        stmt = stmt.where(clause)
    return stmt


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; the gateway writes them all in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def ratio(value: float | None, places: int = 4) -> str | None:
    """A ratio as a decimal string (signed data holds no floats)."""
    return None if value is None else f"{value:.{places}f}"
