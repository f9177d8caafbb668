"""The two separate deployables of a broker set-up: `worker` (Celery, one region's queues)
and `scheduler` (periodic work and the relay, one process for the whole gateway)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from gateway.background import Supervisor
from gateway.core.context import GatewayContext
from gateway.core.errors import GatewayError, KeyCustodyRefused
from gateway.core.settings import Settings
from gateway.lineage.checkpointer import Checkpointer
from gateway.pipeline import Redactor, worker_id
from gateway.redactor import IsolatedRedactor
from gateway.scaleout.broker import REDACT_TASK, celery_app, region_queue
from gateway.scaleout.kms import require_gateway_credential, require_region_credential
from gateway.scaleout.periodic import (
    RECONCILE_TASK,
    RETENTION_TASK,
    REVIEW_PULL_TASK,
    celery_send,
    dispatch_loops,
    run_reconcile_task,
    run_retention_task,
    run_review_pull_task,
)
from gateway.scaleout.probes import serve_probes
from gateway.scaleout.relay import CeleryPublisher, relay_loop
from gateway.scaleout.singleton import SchedulerLock
from gateway.scaleout.tasks import WorkerRuntime, run_woken_job

log = logging.getLogger(__name__)


class WorkerMisconfigured(GatewayError):
    code, status, title = "worker-misconfigured", 400, "Worker configuration refused"


def worker_region(ctx: GatewayContext, *, claimed: str | None) -> str:
    """With a key service, the region is the credential's: a different `--region` is refused.
    Without one (a local master key), the flag, else the gateway's region setting."""
    require_region_credential(ctx.keys)
    custody = ctx.custody_region
    if custody is None:
        return claimed or ctx.settings.region
    if claimed is not None and claimed != custody:
        raise KeyCustodyRefused(
            f"this worker's credential belongs to region {custody}, not {claimed}",
            credential_region=custody,
            claimed=claimed,
        )
    return custody


def worker_queues(region: str, queues: list[str] | None, *, prefix: str = "") -> list[str]:
    """Its region's queue by default; any other region's queue is refused."""
    own = region_queue(region, prefix=prefix)
    chosen = queues or [own]
    foreign = [name for name in chosen if name != own]
    if foreign:
        raise WorkerMisconfigured(
            f"a worker of region {region} consumes only {own}, not {', '.join(foreign)}",
            region=region,
        )
    return chosen


def worker_runtime(
    settings: Settings, *, region: str | None, redactor_factory: Callable[[], Redactor]
) -> WorkerRuntime:
    ctx = GatewayContext.open(settings, migrate_schema=False)
    mine = worker_region(ctx, claimed=region)
    ctx.settings = ctx.settings.model_copy(update={"region": mine})  # lineage says where
    return WorkerRuntime(ctx, mine, redactor_factory(), f"{worker_id()}:{mine}")


POOL = "threads"
"""One task thread beside Celery's event loop, not `solo`: a solo pool runs the task inside
the loop, and with `acks_late` the ack is only queued there (`hub.call_soon`); when the task
was itself started from that queue (the next message was already read), nothing wakes the
loop, so the ack, and with prefetch 1 the next message, waited for the loop's next timer:
about 125 ms per job, up to 2 s (bench/README.md, "Where a Celery worker waited"; upstream
celery/celery#7718). From a task thread the ack wakes the loop at once."""


def worker_argv(queues: list[str], *, hostname: str, log_level: str) -> list[str]:
    """`celery worker` arguments: one job at a time (concurrency 1 with prefetch 1 and late
    acknowledgement, `broker.celery_app`), on a task thread of its own (`POOL`)."""
    return [
        "worker",
        f"--pool={POOL}",
        "--concurrency=1",
        f"--queues={','.join(queues)}",
        f"--hostname={hostname}",
        "--without-gossip",
        "--without-mingle",
        f"--loglevel={log_level}",
    ]


def run_worker(
    settings: Settings,
    *,
    queues: list[str] | None,
    region: str | None,
    probes: tuple[str, int] | None = None,
    redactor_factory: Callable[[], Redactor] | None = None,
) -> None:
    """A Celery worker (one job at a time on a task thread, its redaction in an isolated
    process); `probes`: (host, port) of its /health/live, /health/ready and /metrics;
    `redactor_factory`: the redactor (the isolated redaction engine unless given)."""
    rt = worker_runtime(
        settings,
        region=region,
        redactor_factory=redactor_factory or (lambda: IsolatedRedactor(settings)),
    )
    names = worker_queues(rt.region, queues, prefix=settings.broker_queue_prefix)
    app = celery_app(settings, queues=names)

    def redact(job_id: int) -> str:
        return run_woken_job(rt, int(job_id))

    def retention(region: str) -> str:
        return run_retention_task(rt, str(region))

    def reconcile(_region: str) -> str:
        return run_reconcile_task(rt)

    app.task(name=REDACT_TASK)(redact)
    app.task(name=RETENTION_TASK)(retention)

    def review_pull(region: str) -> str:
        return run_review_pull_task(rt, str(region))

    app.task(name=RECONCILE_TASK)(reconcile)
    app.task(name=REVIEW_PULL_TASK)(review_pull)
    log.info("worker starting", extra={"region": rt.region, "queues": names})
    server = None
    if probes is not None:
        server = serve_probes(rt, host=probes[0], port=probes[1])
        threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
    try:
        app.worker_main(
            worker_argv(names, hostname=f"{rt.region}@{worker_id()}", log_level=settings.log_level)
        )
    finally:
        if server is not None:
            server.shutdown()
        close = getattr(rt.redactor, "close", None)
        if callable(close):
            close()
        rt.ctx.close()


def scheduler_supervisor(ctx: GatewayContext, settings: Settings) -> Supervisor:
    """Lineage checkpoints (ledger only) and the broker relay run here; retention and the
    annotation reconcile are only sent from here, as tasks run by the workers."""
    app = celery_app(settings)
    supervisor = Supervisor()
    poll = settings.lineage_checkpoint_poll_seconds
    supervisor.add(Checkpointer(ctx, poll_seconds=poll).periodic())
    for loop in dispatch_loops(settings, celery_send(app)):
        supervisor.add(loop)
    supervisor.add(relay_loop(ctx, CeleryPublisher(app)))
    return supervisor


def run_scheduler(settings: Settings, *, standby_seconds: float = 5.0) -> None:
    """Run until SIGTERM or SIGINT. Any number may run: one holds the scheduler lock and
    works, the others wait as standbys and take over when it goes (or loses its database)."""
    ctx = GatewayContext.open(settings, migrate_schema=False)
    try:
        require_gateway_credential(ctx.keys)
    except GatewayError:
        ctx.close()
        raise
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    lock = SchedulerLock(ctx.engine)
    try:
        while not stop.is_set():
            if not lock.try_acquire():
                stop.wait(standby_seconds)  # another scheduler is active
                continue
            _lead(ctx, settings, lock, stop, check_seconds=standby_seconds)
    finally:
        lock.release()
        ctx.close()


def _lead(
    ctx: GatewayContext,
    settings: Settings,
    lock: SchedulerLock,
    stop: threading.Event,
    *,
    check_seconds: float,
) -> None:
    supervisor = scheduler_supervisor(ctx, settings).start()
    log.info("scheduler active", extra={"loops": [loop.name for loop in supervisor.loops]})
    try:
        while not stop.wait(check_seconds):
            if not lock.held():
                log.warning("scheduler lock lost; standing by")
                return
    finally:
        supervisor.stop()
