"""Prometheus metrics. Process-wide instruments (prometheus-client's default registry), fed
where things happen; queue depth and age are read from the database at scrape time.

Labels hold only codes and states, never ids, names, keys or task data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from gateway.core.models import Job, JobState, LineageHead

log = logging.getLogger(__name__)
CONTENT_TYPE = CONTENT_TYPE_LATEST

JOBS = Counter(
    "gateway_jobs_total", "Jobs settled, by outcome and reason code", ["outcome", "reason"]
)
JOB_SECONDS = Histogram(
    "gateway_job_duration_seconds",
    "Wall time of one job attempt (claim to settle)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
ASSETS = Counter(
    "gateway_assets_processed_total", "Assets out of the pipeline, by state", ["state"]
)
QUARANTINES = Counter("gateway_quarantines_total", "Quarantined assets, by reason code", ["reason"])
STAGE_SECONDS = Histogram(
    "gateway_redaction_stage_seconds",
    "Redaction latency per stage (decode, each detector, operator, leak check, encode, total)",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
SYNC = Counter("gateway_sync_tasks_total", "Label Studio task syncs, by outcome", ["outcome"])
WEBHOOKS = Counter(
    "gateway_webhooks_total", "Label Studio webhooks received, by outcome", ["outcome"]
)
HTTP = Counter(
    "gateway_http_requests_total",
    "HTTP requests, by method, route template and status",
    ["method", "route", "status"],
)
LOOP_FAILURES = Gauge(
    "gateway_background_loop_failures", "Consecutive failures of each background loop", ["loop"]
)
LOOP_STALL_SECONDS = Histogram(
    "gateway_event_loop_stall_seconds",
    "How long the HTTP event loop stood still, per stall over 0.5 s (gateway/loop_watch.py)",
    buckets=(0.5, 1, 2, 5, 10, 30, 60),
)
QUEUE_DEPTH = Gauge("gateway_queue_depth", "Jobs by state", ["state"])
QUEUE_AGE = Gauge("gateway_queue_oldest_age_seconds", "Age of the oldest queued job")
DATABASE_UP = Gauge("gateway_database_up", "1 when the last scrape could read the job table")
READY = Gauge("gateway_ready", "1 when /health/ready would answer 200")


def observe_redaction(
    state: str, *, reasons: Iterable[Mapping[str, Any]], timings_ms: Mapping[str, float]
) -> None:
    ASSETS.labels(state=state).inc()
    if state == "quarantined":
        for reason in reasons:
            QUARANTINES.labels(reason=str(reason.get("code", "unknown"))).inc()
    for stage, ms in timings_ms.items():
        STAGE_SECONDS.labels(stage=stage).observe(ms / 1000)


def observe_sync(created: int, adopted: int, refreshed: int, failed: int) -> None:
    for outcome, n in (
        ("created", created),
        ("adopted", adopted),
        ("refreshed", refreshed),
        ("failed", failed),
    ):
        SYNC.labels(outcome=outcome).inc(n)


class _LedgerSnapshot(Collector):
    """The chain's length as a counter: `rate(gateway_ledger_records_total[5m])` is the
    append rate of every process writing to this database, read at scrape time."""

    def __init__(self, records: int) -> None:
        self.records = records

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "gateway_ledger_records", "Lineage records in the chain", value=self.records
        )


def _ledger_records(engine: Engine) -> int:
    with Session(engine) as session:
        head = session.get(LineageHead, 1)
        return int(head.seq) if head is not None else 0


def _queue_facts(engine: Engine, now: datetime) -> None:
    with Session(engine) as session:
        counts = session.exec(select(Job.state, func.count()).group_by(Job.state)).all()
        oldest = session.exec(
            select(func.min(Job.created_at)).where(col(Job.state) == JobState.QUEUED)
        ).one()
    for state in JobState:
        QUEUE_DEPTH.labels(state=state.value).set(0)
    for name, count in counts:
        QUEUE_DEPTH.labels(state=str(name)).set(count)
    if oldest is not None and oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=now.tzinfo)
    QUEUE_AGE.set(max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)


def render(engine: Engine, *, now: datetime, loops: Mapping[str, int], ready: bool) -> bytes:
    """The exposition text: live instruments plus what the database says right now."""
    extra = CollectorRegistry()
    try:
        _queue_facts(engine, now)
        extra.register(_LedgerSnapshot(_ledger_records(engine)))
        DATABASE_UP.set(1)
    except Exception as exc:  # the scrape still answers; the gauge says why numbers are old
        DATABASE_UP.set(0)
        log.warning("metrics could not read the job table: %s", type(exc).__name__)
    for name, failures in loops.items():
        LOOP_FAILURES.labels(loop=name).set(failures)
    READY.set(1 if ready else 0)
    return generate_latest(REGISTRY) + generate_latest(extra)
