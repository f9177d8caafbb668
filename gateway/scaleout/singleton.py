"""One active scheduler per gateway, whatever runs: the others wait as hot standbys.

PostgreSQL: a session advisory lock held on a connection of its own (it is released when that
connection ends, so a scheduler that lost its database gives the role up; `held()` notices).
SQLite (one host): an exclusive `flock` on a file beside the database file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text

LOCK_KEY = "hashtext(current_database() || '/' || current_schema() || '/' || :name)"
"""The advisory lock's number: one per name, database and schema (gateways sharing a server)."""
SCHEDULER = "lpg-scheduler"


class SchedulerLock:
    """`name`: which role the lock guards (the scheduler, or one periodic task of a region:
    the same lock keeps two runs of it from overlapping, whoever sent them)."""

    def __init__(self, engine: Engine, name: str = SCHEDULER) -> None:
        self._engine = engine
        self._name = name
        self._conn: Connection | None = None
        self._file: IO[bytes] | None = None

    @property
    def _postgres(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    def try_acquire(self) -> bool:
        if self._postgres:
            conn = self._engine.connect()
            got = bool(
                conn.execute(
                    text(f"SELECT pg_try_advisory_lock({LOCK_KEY})"), {"name": self._name}
                ).scalar()
            )
            conn.commit()
            if got:
                self._conn = conn
            else:
                conn.close()
            return got
        suffix = "scheduler" if self._name == SCHEDULER else self._name.replace("/", "-")
        path = Path(f"{self._engine.url.database or 'gateway.db'}.{suffix}.lock")
        fh = path.open("ab")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        os.chmod(path, 0o600)
        self._file = fh
        return True

    def held(self) -> bool:
        """Still ours: for PostgreSQL, the connection that holds the lock still answers."""
        if self._file is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
        except Exception:  # the connection, and with it the lock, is gone
            self._conn = None
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(
                    text(f"SELECT pg_advisory_unlock({LOCK_KEY})"), {"name": self._name}
                )
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
