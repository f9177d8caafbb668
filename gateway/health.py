"""Readiness, per role: an API process is ready when its database and storage answer; a
worker when, in addition, every job worker loop's last tick succeeded and its redaction worker
processes are alive (so it can take and finish jobs). Schedules (retention, checkpoints, the
annotation reconcile) are reported beside, not gating: a failing retention run must not take
the API out of service; it shows in `advisory` and in /metrics."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session, select

from gateway.background import Supervisor
from gateway.core.models import Job
from gateway.core.storage import BlobStore, probe_key

PROBE_PREFIX = "health"


def database_answers(engine: Engine) -> None:
    """Read a real table (SQLite answers `SELECT 1` without opening the file)."""
    with Session(engine) as session:
        session.exec(select(Job.id).limit(1)).first()


def storage_writable(store: BlobStore) -> None:
    """Write and remove a tiny blob; raises (e.g. ENOSPC) when storage cannot take a write."""
    key = probe_key(store, f"{PROBE_PREFIX}/probe-{uuid.uuid4().hex}")
    store.put(key, b"ok")
    store.delete(key)


@dataclass
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)  # name -> "ok" or the error's type
    advisory: dict[str, str] = field(default_factory=dict)  # schedules: reported, not gating

    @property
    def ready(self) -> bool:
        return all(v == "ok" for v in self.checks.values())


def readiness(engine: Engine, store: BlobStore, supervisor: Supervisor | None) -> Readiness:
    result = Readiness()
    for name in ("database", "storage"):
        try:
            if name == "database":
                database_answers(engine)
            else:
                storage_writable(store)
            result.checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; the type says which kind
            result.checks[name] = type(exc).__name__
    if supervisor is not None:
        for status in supervisor.health():
            target = result.checks if status.critical else result.advisory
            if status.healthy:
                target[status.name] = "ok"
            elif not status.running:
                target[status.name] = "stopped"
            elif not status.able:
                target[status.name] = "unable"
            else:
                target[status.name] = f"failing ({status.failures})"
    return result
