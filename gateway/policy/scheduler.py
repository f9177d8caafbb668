"""The service's scheduled retention job: a supervised loop (`gateway.background`) running
`run_retention` and retrying open erasure requests' pending recipients every
`retention_interval_seconds` (0 disables it; the CLI and API can still run both)."""

from __future__ import annotations

import logging

from gateway.background import Periodic
from gateway.core.context import GatewayContext
from gateway.core.errors import GatewayError
from gateway.policy.erasure import retry_open_erasures
from gateway.policy.retention import run_retention

log = logging.getLogger(__name__)


class RetentionScheduler:
    def __init__(self, ctx: GatewayContext, *, interval_seconds: float) -> None:
        self._ctx = ctx
        self._interval = interval_seconds

    def periodic(self) -> Periodic:
        """The loop the service's supervisor runs (errors are logged and backed off there)."""
        return Periodic("retention", self._interval, self.run_once)

    def run_once(self) -> None:
        try:
            report = run_retention(self._ctx, dry_run=False)
            retry_open_erasures(self._ctx)
        except GatewayError:  # the next round retries; every finished item is recorded
            log.exception("retention run failed")
            return
        if report.done or report.plan.errors:
            log.info("retention: %d deleted, %d errors", len(report.done), len(report.plan.errors))
