"""The embedded default job runner: background threads that drain the job table.

Each thread drives its own `Redactor` (one isolated redaction process each), so N threads use
N cores. Woken when uploads arrive, and polling slowly to pick up jobs other processes left.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from gateway.context import GatewayContext
from gateway.pipeline import Redactor, claim_job, run_job, worker_id

log = logging.getLogger(__name__)

RedactorFactory = Callable[[], Redactor]


class BackgroundWorkers:
    def __init__(
        self,
        ctx: GatewayContext,
        *,
        redactor_factory: RedactorFactory,
        count: int,
        poll_seconds: float = 5.0,
    ) -> None:
        self._ctx = ctx
        self._factory = redactor_factory
        self._count = count
        self._poll = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self._count):
            thread = threading.Thread(target=self._loop, name=f"gateway-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _loop(self) -> None:
        redactor = self._factory()
        me = f"{worker_id()}:{threading.current_thread().name}"
        try:
            while not self._stop.is_set():
                job = claim_job(self._ctx, worker=me)
                if job is None:
                    self._wake.wait(self._poll)
                    self._wake.clear()
                    continue
                run_job(self._ctx, job, redactor=redactor)
        finally:
            close = getattr(redactor, "close", None)
            if callable(close):
                close()
