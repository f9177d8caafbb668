"""Run queued redaction jobs in this process with one isolated worker per core (CLI, demo).

The same job-draining code as the service's workers (`pipeline.process_next` through
`pipeline.drain`): leases, heartbeats, fenced settling and retries alike. A job sent back for
a retry (its redaction worker crashed) is waited for until it is due."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlmodel import col, func, select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import AssetState, Job, JobState
from gateway.jobs import REDACT_KIND, next_due
from gateway.pipeline import Redactor, drain, worker_id
from gateway.redactor import IsolatedRedactor

Progress = Callable[[int, int], None]


@dataclass
class ProcessSummary:
    states: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        parts = [f"{n} {state}" for state, n in sorted(self.states.items())]
        return "processed: " + (", ".join(parts) if parts else "nothing to do")


def pending_jobs(ctx: GatewayContext) -> int:
    with transaction(ctx.engine) as session:
        stmt = (
            select(func.count())
            .select_from(Job)
            .where(
                col(Job.state).in_([JobState.QUEUED, JobState.RUNNING]),
                col(Job.kind) == REDACT_KIND,  # what `process` runs (not a dataset's sync)
            )
        )
        return int(session.exec(stmt).one())


def _retry_wait(ctx: GatewayContext) -> float | None:
    """Seconds until a job sent back for a retry is due; None if none waits."""
    with transaction(ctx.engine) as session:
        return next_due(session, now=ctx.clock(), leases=False)


def process_pending(
    ctx: GatewayContext,
    *,
    redactor_factory: Callable[[], Redactor] | None = None,
    progress: Progress | None = None,
) -> ProcessSummary:
    factory = redactor_factory or _default_factory(ctx)
    total = pending_jobs(ctx)
    summary, lock = ProcessSummary(), threading.Lock()
    done = 0

    def one_worker(index: int) -> None:
        nonlocal done
        redactor = factory()
        try:
            while True:
                ran = drain(
                    ctx,
                    redactor=redactor,
                    worker=f"{worker_id()}:{index}",
                    limit=1,
                    on_done=lambda state: record(state),
                )
                if ran == 0:
                    wait = _retry_wait(ctx)
                    if wait is None:
                        return
                    time.sleep(min(wait, 5.0) + 0.01)  # a retry's back-off, not a race
        finally:
            close = getattr(redactor, "close", None)
            if callable(close):
                close()

    def record(state: AssetState) -> None:
        nonlocal done
        with lock:
            done += 1
            summary.states[state.value] += 1
            if progress:
                progress(done, max(total, done))

    workers = max(1, min(ctx.settings.workers, total))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(one_worker, i) for i in range(workers)]:
            future.result()
    return summary


def _default_factory(ctx: GatewayContext) -> Callable[[], Redactor]:
    return lambda: IsolatedRedactor(ctx.settings)
