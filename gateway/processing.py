"""Run queued redaction jobs in this process with one isolated worker per core (CLI, demo)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlmodel import func, select

from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.models import AssetState, Job, JobState
from gateway.pipeline import Redactor, drain, worker_id

Progress = Callable[[int, int], None]


@dataclass
class ProcessSummary:
    states: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        parts = [f"{n} {state}" for state, n in sorted(self.states.items())]
        return "processed: " + (", ".join(parts) if parts else "nothing to do")


def pending_jobs(ctx: GatewayContext) -> int:
    with transaction(ctx.engine) as session:
        stmt = select(func.count()).select_from(Job).where(Job.state != JobState.DONE)
        return int(session.exec(stmt).one())


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
                    return
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
    from gateway.redactor import IsolatedRedactor

    return lambda: IsolatedRedactor(ctx.settings)
