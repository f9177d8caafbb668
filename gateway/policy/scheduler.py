"""The service's scheduled retention job: a background thread running `run_retention` and
retrying open erasure requests' pending recipients every `retention_interval_seconds`
(0 disables it; the CLI and API can still run both)."""

from __future__ import annotations

import logging
import threading

from gateway.context import GatewayContext
from gateway.errors import GatewayError
from gateway.policy.erasure import retry_open_erasures
from gateway.policy.retention import run_retention

log = logging.getLogger(__name__)


class RetentionScheduler:
    def __init__(self, ctx: GatewayContext, *, interval_seconds: float) -> None:
        self._ctx = ctx
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._interval <= 0:
            return
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> None:
        try:
            report = run_retention(self._ctx, dry_run=False)
            retry_open_erasures(self._ctx)
        except GatewayError:  # the next round retries; every finished item is recorded
            log.exception("retention run failed")
            return
        if report.done or report.plan.errors:
            log.info("retention: %d deleted, %d errors", len(report.done), len(report.plan.errors))

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.run_once()
