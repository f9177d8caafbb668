"""Notices when the HTTP event loop stops turning, and names what held it.

Everything the API answers goes through one event loop; a handler that blocks it (a
synchronous call in an `async def`, a long computation) delays every request, and a Label
Studio webhook waiting longer than its `WEBHOOK_TIMEOUT` is lost to the next pull. A task on the
loop beats every `period` seconds; a thread watches the beats. When a beat is more than
`threshold` late, the thread logs the loop thread's stack once for that stall (what is running
there), and when the loop turns again it logs and counts the stall's length.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable

from gateway.metrics import LOOP_STALL_SECONDS

log = logging.getLogger(__name__)
STALL_THRESHOLD_S = 0.5
"""Half of Label Studio's default webhook timeout (1 s): reported while there is time to act."""
BEAT_PERIOD_S = 0.1


class LoopWatch:
    """Started on the loop it watches (`start` from a coroutine), stopped from anywhere."""

    def __init__(
        self,
        *,
        threshold: float = STALL_THRESHOLD_S,
        period: float = BEAT_PERIOD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold, self.period, self.clock = threshold, period, clock
        self._last_beat = clock()
        self._loop_thread = 0
        self._stopped = threading.Event()
        self._beat_task: asyncio.Task[None] | None = None
        self._watcher: threading.Thread | None = None

    def start(self) -> LoopWatch:
        self._loop_thread = threading.get_ident()
        self._last_beat = self.clock()
        self._beat_task = asyncio.get_running_loop().create_task(self._beat())
        self._watcher = threading.Thread(target=self._watch, name="loop-watch", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._beat_task is not None:
            self._beat_task.cancel()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=5)

    async def _beat(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                self._last_beat = self.clock()
                await asyncio.sleep(self.period)

    def _watch(self) -> None:
        stalled_since: float | None = None
        while not self._stopped.wait(self.period):
            beat = self._last_beat
            late = self.clock() - beat
            if stalled_since is None and late > self.threshold:
                stalled_since = beat
                log.warning(
                    "event loop blocked",
                    extra={"blocked_ms": round(late * 1000), "stack": self._loop_stack()},
                )
            elif stalled_since is not None and beat > stalled_since:
                stalled = beat - stalled_since
                LOOP_STALL_SECONDS.observe(stalled)
                log.warning("event loop turning again", extra={"stalled_ms": round(stalled * 1000)})
                stalled_since = None

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        return "".join(traceback.format_stack(frame)[-12:]) if frame is not None else "(gone)"
