"""The service's scheduled annotation reconcile: Label Studio's open-source webhooks are sent
once and never retried, so every `annotation_pull_interval_seconds` a supervised loop runs
the pull-based reconcile (`annotations pull`) for every destination and stores whatever a
lost webhook missed, and reads back the events that failed (0 disables it; the CLI can still
run it). One destination that fails does not stop the others, one annotation that fails does
not stop its destination's pull (it is recorded in `annotation_failure`); the next tick tries
both again."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlmodel import select

from gateway.background import Periodic
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError
from gateway.core.models import Destination
from gateway.labelstudio.annotations import PullReport, pull_annotations
from gateway.labelstudio.client import RetryPolicy
from gateway.labelstudio.residency_withdrawal import WithdrawalReport, withdraw_forbidden
from gateway.lineage import Actor

log = logging.getLogger(__name__)
RECONCILER = Actor("system", "annotation-reconcile")


@dataclass
class ReconcileTick:
    pulled: dict[str, PullReport] = field(default_factory=dict)  # by destination name
    failed: dict[str, str] = field(default_factory=dict)  # destination name -> error code
    # by destination name: tasks withdrawn because residency no longer allows the destination
    withdrawn: dict[str, WithdrawalReport] = field(default_factory=dict)


def reconcile_all(ctx: GatewayContext, *, retry: RetryPolicy | None = None) -> ReconcileTick:
    """One tick: pull every destination's annotations, each on its own; then withdraw the
    tasks a residency policy activated since no longer allows there (the pull kept their work)."""
    tick = ReconcileTick()
    with transaction(ctx.engine) as session:
        destinations = list(session.exec(select(Destination)).all())
    for destination in destinations:
        try:
            tick.pulled[destination.name] = pull_annotations(
                ctx, destination, actor=RECONCILER, retry=retry
            )
            withdrawal = withdraw_forbidden(
                ctx, destination, actor=RECONCILER, annotations_pulled=True, retry=retry
            )
            if withdrawal.withdrawn:
                tick.withdrawn[destination.name] = withdrawal
        except GatewayError as exc:
            tick.failed[destination.name] = exc.code
            log.warning("annotation reconcile of %s failed: %s", destination.name, exc.code)
    return tick


class AnnotationReconciler:
    def __init__(
        self,
        ctx: GatewayContext,
        *,
        interval_seconds: float,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._ctx = ctx
        self._interval = interval_seconds
        self._retry = retry

    def periodic(self) -> Periodic:
        """The loop the service's supervisor runs (0: none; errors are backed off there)."""
        return Periodic("annotation-reconcile", self._interval, self.run_once)

    def run_once(self) -> ReconcileTick:
        tick = reconcile_all(self._ctx, retry=self._retry)
        log.info(
            "annotation reconcile: %d destinations read, %d failed, %d annotations not stored",
            len(tick.pulled),
            len(tick.failed),
            sum(len(report.failed) for report in tick.pulled.values()),
        )
        return tick
