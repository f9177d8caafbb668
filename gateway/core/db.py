"""Engine and session factory; schema comes only from Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlmodel import Session, col, select

from gateway.core.errors import GatewayError, NotFound
from gateway.core.filemodes import private_sqlite_file
from gateway.shipped import shipped_path

MIGRATIONS_DIR = shipped_path("migrations")


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        path = make_url(url).database  # None or "" for an in-memory database
        if path and path != ":memory:" and not path.startswith("file:"):
            private_sqlite_file(Path(path))
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's implicit transactions begin late; take the write lock at BEGIN instead so
        # that a read-then-write transaction cannot deadlock against another writer.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    # hide_parameters: a logged database error names the statement, never the values bound
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see make_engine)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


MIGRATION_LOCK = "hashtext(current_database() || '/' || current_schema() || '/lpg-migrate')"
"""PostgreSQL: one advisory lock per database and schema around a migration."""


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent). On PostgreSQL several replicas
    may run `init` at once (each API pod's start): they take turns under an advisory lock, and
    the later ones find the schema current. (SQLite is one host's file; its write lock
    serialises the migration's transactions.)"""
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), "heads")
        return
    with engine.connect() as lock:
        lock.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        lock.commit()  # the lock is the session's; no transaction stays open while we wait
        try:
            command.upgrade(alembic_config(engine), "heads")
        finally:
            lock.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            lock.commit()


class SchemaOutdated(GatewayError):
    code, status, title = "schema-outdated", 503, "Database schema is not current"


def require_current_schema(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not at the newest migration (a command
    never migrates on its own: `privacy-gateway init` does, once, when the operator says so)."""
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    if current != heads:
        state = "has no schema" if not current else "is at an older migration"
        raise SchemaOutdated(
            f"the database {state}: run `privacy-gateway init` to migrate it",
            current=sorted(current),
            newest=sorted(heads),
        )


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class _Named(Protocol):
    name: str


NamedRow = TypeVar("NamedRow", bound=_Named)


def get_by_id_or_name(session: Session, table: type[NamedRow], ref: str, *, what: str) -> NamedRow:
    """The row whose id, else whose name, is `ref` (datasets and destinations are named either
    way on the API and the command line); NotFound names `what` was looked for."""
    found = (
        session.get(table, ref) or session.exec(select(table).where(col(table.name) == ref)).first()
    )
    if found is None:
        raise NotFound(f"no {what} {ref!r}", **{what: ref})
    return found
