"""The embedded default job runner and schedules, as supervised loops (`gateway.background`).

Each `JobWorker` drives its own `Redactor` (one isolated redaction process each), so N
workers use N cores. Woken when uploads arrive, and polling slowly to pick up jobs other
processes left. Before it takes a job it checks that storage takes a write: a full disk stops
it from claiming (and spending attempts on) work it could not finish.
"""

from __future__ import annotations

import logging

from gateway.background import Periodic, Supervisor
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.health import storage_writable
from gateway.jobs import next_due
from gateway.labelstudio.reconcile import AnnotationReconciler
from gateway.lineage.checkpointer import Checkpointer
from gateway.pipeline import Redactor, process_next, worker_id
from gateway.policy.scheduler import RetentionScheduler
from gateway.redaction_step import OwnRedactor, RedactorFactory
from gateway.review.schedule import ReviewPuller
from gateway.sync_jobs import run_sync_job

log = logging.getLogger(__name__)


class JobWorker:
    """One loop that drains the job table with its own redactor."""

    first_after_interval = False
    wakeable = True
    critical = True

    def __init__(
        self, ctx: GatewayContext, *, name: str, redactor_factory: RedactorFactory
    ) -> None:
        self.ctx, self.name = ctx, name
        self.interval = self._poll = ctx.settings.worker_poll_seconds
        self._redactor = OwnRedactor(redactor_factory)

    @property
    def worker(self) -> str:
        return f"{worker_id()}:{self.name}"

    def tick(self) -> bool:
        storage_writable(self.ctx.store)
        redactor = self._redactor.current()
        ran = process_next(self.ctx, redactor=redactor, worker=self.worker)
        if ran is None and run_sync_job(self.ctx, worker=self.worker) is not None:
            return True  # a dataset sync ran (`POST .../sync?background=true`)
        if ran is None:
            revive = getattr(redactor, "revive", None)
            if callable(revive):  # a worker process killed while idle is replaced now
                revive()
            with transaction(self.ctx.engine) as session:  # a retry or a lease ends soon?
                due = next_due(session, now=self.ctx.clock())
            self.interval = self._poll if due is None else min(self._poll, due + 0.05)
            return False
        log.info(
            "job finished",
            extra={"job_id": ran.job_id, "state": ran.state.value if ran.state else "retry"},
        )
        return True

    @property
    def redactor(self) -> Redactor | None:
        return self._redactor.made

    def able(self) -> bool:
        """False while a redaction worker process is dead and not yet replaced."""
        alive = getattr(self._redactor.made, "alive", True)
        return bool(alive)

    def close(self) -> None:
        self._redactor.close()


def job_workers(
    ctx: GatewayContext, *, redactor_factory: RedactorFactory, count: int
) -> list[JobWorker]:
    return [
        JobWorker(ctx, name=f"gateway-worker-{i}", redactor_factory=redactor_factory)
        for i in range(count)
    ]


def schedules(ctx: GatewayContext, settings: Settings) -> list[Periodic]:
    """Retention, lineage checkpoints and the annotation reconcile (an interval of 0: off)."""
    loops = [
        RetentionScheduler(ctx, interval_seconds=settings.retention_interval_seconds).periodic(),
        Checkpointer(ctx, poll_seconds=settings.lineage_checkpoint_poll_seconds).periodic(),
        AnnotationReconciler(
            ctx, interval_seconds=settings.annotation_pull_interval_seconds
        ).periodic(),
    ]
    return [loop for loop in loops if loop.interval > 0]


def background_supervisor(
    ctx: GatewayContext, settings: Settings, *, redactor_factory: RedactorFactory
) -> Supervisor:
    """The service's loops, as `settings` (the entry point's) asks for them."""
    supervisor = Supervisor()
    for worker in job_workers(ctx, redactor_factory=redactor_factory, count=settings.workers):
        supervisor.add(worker)
    for loop in schedules(ctx, settings):
        supervisor.add(loop)
    if settings.review_pull_interval_seconds > 0:  # re-renders: it needs its own redactor
        supervisor.add(
            ReviewPuller(
                ctx,
                interval_seconds=settings.review_pull_interval_seconds,
                redactor_factory=redactor_factory,
            )
        )
    return supervisor
