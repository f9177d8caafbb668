"""Periodic work on Celery workers: the scheduler only sends it (`dispatch_loops`).

- Retention (`gateway.retention`): one message per worker region, on that region's queue. A
  region's worker deletes the due originals and redacted copies whose blobs are in its own
  bucket (only it holds that bucket's credentials); the items that touch no bucket (Label
  Studio tasks, vault entries, open erasure requests' pending recipients), and blobs of a
  local store, go to the first worker region (`home_region`).
- The annotation reconcile (`gateway.reconcile`): one message, on the home region's queue.
- The review pull (`gateway.review_pull`): one message per worker region; a region's worker
  reads back the decisions of the datasets routed to it (a release re-renders from the
  original, which only a worker holding the dataset's key and bucket can open).

Each run holds a lock named after the task and its region (a PostgreSQL advisory lock, an
`flock` beside a SQLite file): a second run sent while one works (a duplicate message, a slow
worker and the next interval) answers `busy` and does nothing. Inside a run every item is
re-checked under its row lock in its own transaction, so even two runs that did overlap
would each delete an item at most once. A message not taken within one interval expires
(`expires`): workers that were away find one run waiting, not a backlog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Celery
from sqlmodel import Session

from gateway.background import Periodic
from gateway.core.db import transaction
from gateway.core.errors import GatewayError
from gateway.core.models import Asset
from gateway.core.settings import Settings
from gateway.core.storage import named_region
from gateway.labelstudio.reconcile import reconcile_all
from gateway.policy.erasure import retry_open_erasures
from gateway.policy.retention import DueItem, DueKind, run_retention
from gateway.review.decide import pull_decisions
from gateway.review.schedule import REVIEW_PULL, review_datasets
from gateway.scaleout.broker import region_queue
from gateway.scaleout.routing import dataset_queue
from gateway.scaleout.singleton import SchedulerLock
from gateway.scaleout.tasks import WorkerRuntime

log = logging.getLogger(__name__)
RETENTION_TASK = "gateway.retention"
RECONCILE_TASK = "gateway.reconcile"
REVIEW_PULL_TASK = "gateway.review_pull"
Send = Callable[[str, list[str], str, float], None]
"""(task name, args, queue, expires in seconds): how the scheduler sends a periodic task."""


def home_region(settings: Settings) -> str:
    return settings.routing_regions[0]


def celery_send(app: Celery) -> Send:
    def send(task: str, args: list[str], queue: str, expires: float) -> None:
        app.send_task(task, args=args, queue=queue, routing_key=queue, expires=expires)

    return send


def dispatch_loops(settings: Settings, send: Send) -> list[Periodic]:
    """The scheduler's periodic loops when a broker runs the work (an interval of 0: off)."""
    prefix = settings.broker_queue_prefix

    def retention() -> None:
        every = settings.retention_interval_seconds
        for region in settings.routing_regions:
            send(RETENTION_TASK, [region], region_queue(region, prefix=prefix), every)

    def reconcile() -> None:
        home = home_region(settings)
        every = settings.annotation_pull_interval_seconds
        send(RECONCILE_TASK, [home], region_queue(home, prefix=prefix), every)

    def review_pull() -> None:
        every = settings.review_pull_interval_seconds
        for region in settings.routing_regions:
            send(REVIEW_PULL_TASK, [region], region_queue(region, prefix=prefix), every)

    loops = [
        Periodic("retention-dispatch", settings.retention_interval_seconds, retention),
        Periodic("reconcile-dispatch", settings.annotation_pull_interval_seconds, reconcile),
        Periodic("review-pull-dispatch", settings.review_pull_interval_seconds, review_pull),
    ]
    return [loop for loop in loops if loop.interval > 0]


def owned_by(region: str, *, home: str) -> Callable[[Session, DueItem], bool]:
    """Which due items the retention run of `region` takes."""

    def mine(session: Session, item: DueItem) -> bool:
        if item.kind not in (DueKind.ORIGINAL, DueKind.REDACTED):
            return region == home
        asset = session.get(Asset, item.entity_id)
        if asset is None:
            return False
        keys = [k for k in (asset.original_blob, asset.redacted_blob) if k is not None]
        regions = {named_region(k) or home for k in keys} or {home}
        return region in regions

    return mine


def run_retention_task(rt: WorkerRuntime, region: str) -> str:
    """One region's retention run on its worker; what happened, for the task's log."""
    if region != rt.region:  # sent to the wrong queue: another region's bucket
        log.warning("retention for %s refused by a %s worker", region, rt.region)
        return "refused-region"
    home = home_region(rt.ctx.settings)
    lock = SchedulerLock(rt.ctx.engine, f"lpg-retention/{region}")
    if not lock.try_acquire():
        return "busy"
    try:
        report = run_retention(rt.ctx, dry_run=False, mine=owned_by(region, home=home))
        if region == home:
            retry_open_erasures(rt.ctx)
    except GatewayError as exc:  # the next run retries; every finished item is recorded
        log.warning("retention run failed: %s", exc.code)
        return "error"
    finally:
        lock.release()
    log.info("retention: %d deleted, %d skipped", len(report.done), len(report.skipped))
    return f"deleted-{len(report.done)}"


def run_reconcile_task(rt: WorkerRuntime) -> str:
    lock = SchedulerLock(rt.ctx.engine, "lpg-reconcile")
    if not lock.try_acquire():
        return "busy"
    try:
        tick = reconcile_all(rt.ctx)
    finally:
        lock.release()
    return f"pulled-{len(tick.pulled)}-failed-{len(tick.failed)}"


def run_review_pull_task(rt: WorkerRuntime, region: str) -> str:
    """One region's review pull on its worker: the datasets with a review project whose work is
    routed to this region (residency and key custody, as their jobs are)."""
    if region != rt.region:
        log.warning("review pull for %s refused by a %s worker", region, rt.region)
        return "refused-region"
    lock = SchedulerLock(rt.ctx.engine, f"lpg-review-pull/{region}")
    if not lock.try_acquire():
        return "busy"
    mine = region_queue(rt.region, prefix=rt.ctx.settings.broker_queue_prefix)
    decided = 0
    try:
        for dataset_id in review_datasets(rt.ctx):
            with transaction(rt.ctx.engine) as session:
                if dataset_queue(rt.ctx, session, dataset_id) != mine:
                    continue
            try:
                pull = pull_decisions(rt.ctx, dataset_id, redactor=rt.redactor, actor=REVIEW_PULL)
            except GatewayError as exc:  # one dataset does not stop the others
                log.warning("review pull of %s failed: %s", dataset_id, exc.code)
                continue
            decided += len(pull.decided)
    finally:
        lock.release()
    return f"decided-{decided}"
