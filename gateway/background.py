"""Supervised background work: loops that log every error, back off and carry on.

A `Supervisor` runs each `Loop` on its own thread. A loop's `tick()` does one unit of work
and says whether more is waiting (then the next tick comes at once) or not (then the loop
sleeps its interval, or until `wake()`). An error in a tick is logged, counted and followed by
a bounded exponential back-off with jitter; the thread never dies of it. `health()` tells
readiness whether every loop's last tick succeeded (and, for loops that can say so, whether
they are able to work at all).

Nothing here knows about jobs or the database: `gateway.workers` builds the gateway's loops.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)


class Loop(Protocol):
    name: str
    interval: float
    first_after_interval: bool  # a schedule waits one interval first; a job worker does not
    wakeable: bool  # `Supervisor.wake()` (new work arrived) runs it at once
    critical: bool  # readiness depends on it (job workers); a failing schedule is reported

    def tick(self) -> bool:
        """Do one unit of work; True if more is waiting (tick again at once)."""
        ...

    def able(self) -> bool:
        """Whether the loop could work now (e.g. its redaction worker is alive)."""
        ...

    def close(self) -> None: ...


@dataclass
class Periodic:
    """`fn` every `interval` seconds (the first run after one interval)."""

    name: str
    interval: float
    fn: Callable[[], object]
    first_after_interval: bool = True
    wakeable: bool = False
    critical: bool = False

    def tick(self) -> bool:
        self.fn()
        return False

    def able(self) -> bool:
        return True

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class Backoff:
    """Delay after the n-th consecutive failure: `base * 2**(n-1)`, capped, with jitter drawn
    from the injected random (half to full delay, so restarted fleets do not march together)."""

    base: float = 0.5
    cap: float = 10.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, failures: int) -> float:
        full = min(self.cap, self.base * 2.0 ** max(0, failures - 1))
        return full * (0.5 + 0.5 * self.rng.random())


@dataclass
class LoopStatus:
    name: str
    running: bool = False
    failures: int = 0
    last_error: str | None = None
    last_ok: float | None = None  # monotonic time of the last successful tick
    ticks: int = 0
    able: bool = True
    critical: bool = True

    @property
    def healthy(self) -> bool:
        return self.running and self.failures == 0 and self.able


class Supervisor:
    """Runs loops on threads; each is restarted in place after any error, never abandoned."""

    def __init__(
        self, *, backoff: Backoff | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._backoff = backoff or Backoff()
        self._monotonic = monotonic
        self._loops: list[tuple[Loop, threading.Event, LoopStatus]] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def add(self, loop: Loop) -> Supervisor:
        status = LoopStatus(loop.name, critical=loop.critical)
        self._loops.append((loop, threading.Event(), status))
        return self

    def start(self) -> Supervisor:
        for loop, wake, status in self._loops:
            status.running = True
            thread = threading.Thread(
                target=self._run, args=(loop, wake, status), name=loop.name, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def wake(self) -> None:
        """New work arrived: every sleeping wakeable loop (job workers) ticks now."""
        for loop, wake, _ in self._loops:
            if loop.wakeable:
                wake.set()

    def wake_loop(self, name: str) -> None:
        """Work for one named loop arrived (e.g. a review decision): it ticks now."""
        for loop, wake, _ in self._loops:
            if loop.name == name:
                wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for _, wake, _ in self._loops:
            wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        for loop, _, status in self._loops:
            status.running = False
            try:
                loop.close()
            except Exception:
                log.exception("closing %s failed", loop.name)

    @property
    def loops(self) -> list[Loop]:
        return [loop for loop, _, _ in self._loops]

    def health(self) -> list[LoopStatus]:
        for loop, _, status in self._loops:
            try:
                status.able = loop.able()
            except Exception:  # a probe that errors means the loop cannot work
                status.able = False
        return [status for _, _, status in self._loops]

    @property
    def healthy(self) -> bool:
        """Every critical loop is healthy (schedules' failures show in `health()` only)."""
        return all(status.healthy for status in self.health() if status.critical)

    def _run(self, loop: Loop, wake: threading.Event, status: LoopStatus) -> None:
        if loop.first_after_interval:
            wake.wait(loop.interval)
            wake.clear()
        while not self._stop.is_set():
            try:
                more = loop.tick()
            except Exception as exc:
                status.failures += 1
                status.last_error = f"{type(exc).__name__}: {exc}"[:500]
                delay = self._backoff.delay(status.failures)
                log.exception(
                    "background loop failed; retrying",
                    extra={"loop": loop.name, "failures": status.failures, "delay_s": delay},
                )
                self._stop.wait(delay)
                continue
            if status.failures:
                log.info("background loop recovered", extra={"loop": loop.name})
            status.failures, status.last_error = 0, None
            status.last_ok, status.ticks = self._monotonic(), status.ticks + 1
            if more:
                continue
            wake.wait(loop.interval)
            wake.clear()
        status.running = False
