"""The service's scheduled annotation reconcile: Label Studio's open-source webhooks are sent
once and never retried, so every `annotation_pull_interval_seconds` a supervised loop runs
the pull-based reconcile (`annotations pull`) for every destination and stores whatever a
lost webhook missed (0 disables it; the CLI can still run it). One destination that fails
does not stop the others; the next tick tries it again."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlmodel import select

from gateway.background import Periodic
from gateway.context import GatewayContext
from gateway.db import transaction
from gateway.errors import GatewayError
from gateway.labelstudio.annotations import PullReport, pull_annotations
from gateway.labelstudio.client import RetryPolicy
from gateway.lineage import Actor
from gateway.models import Destination

log = logging.getLogger(__name__)
RECONCILER = Actor("system", "annotation-reconcile")


@dataclass
class ReconcileTick:
    pulled: dict[str, PullReport] = field(default_factory=dict)  # by destination name
    failed: dict[str, str] = field(default_factory=dict)  # destination name -> error code


def reconcile_all(ctx: GatewayContext, *, retry: RetryPolicy | None = None) -> ReconcileTick:
    """One tick: pull every destination's annotations, each on its own."""
    tick = ReconcileTick()
    with transaction(ctx.engine) as session:
        destinations = list(session.exec(select(Destination)).all())
    for destination in destinations:
        try:
            tick.pulled[destination.name] = pull_annotations(
                ctx, destination, actor=RECONCILER, retry=retry
            )
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
            "annotation reconcile: %d destinations read, %d failed",
            len(tick.pulled),
            len(tick.failed),
        )
        return tick
