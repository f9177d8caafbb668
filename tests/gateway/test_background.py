"""The supervisor: a loop that errors is logged, backed off and carries on; never dies."""

from __future__ import annotations

import threading
import time
from random import Random as Seeded  # jitter, not secrets

import pytest

from gateway.background import Backoff, Periodic, Supervisor

pytestmark = pytest.mark.timeout(30)


def wait_for(condition, *, deadline: float = 10.0, what: str = "condition") -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_backoff_is_bounded_exponential_with_injected_jitter() -> None:
    backoff = Backoff(base=1.0, cap=8.0, rng=Seeded(7))  # noqa: S311
    delays = [backoff.delay(n) for n in range(1, 8)]
    again = Backoff(base=1.0, cap=8.0, rng=Seeded(7))  # noqa: S311
    assert delays == [again.delay(n) for n in range(1, 8)]  # the jitter comes from the rng
    for n, delay in enumerate(delays, start=1):
        full = min(8.0, 2.0 ** (n - 1))
        assert full / 2 <= delay <= full
    assert max(delays) <= 8.0


def test_a_failing_loop_backs_off_reports_unhealthy_and_recovers() -> None:
    failures_left = [3]
    calls: list[int] = []
    gate = threading.Event()

    def flaky() -> None:
        calls.append(1)
        if failures_left[0] > 0:
            failures_left[0] -= 1
            if failures_left[0] == 0:
                gate.wait(10)  # hold the third failure until the test looked at the status
            raise OSError(28, "No space left on device")

    supervisor = Supervisor(backoff=Backoff(base=0.001, cap=0.002, rng=Seeded(1)))  # noqa: S311
    supervisor.add(Periodic("flaky", 0.001, flaky, critical=True)).start()
    try:
        wait_for(lambda: len(calls) == 3, what="three failing ticks")
        (status,) = supervisor.health()
        assert status.running and status.failures == 2 and not status.healthy
        assert "No space left" in (status.last_error or "")
        assert not supervisor.healthy
        gate.set()
        wait_for(lambda: supervisor.healthy and len(calls) >= 5, what="recovery")
        (status,) = supervisor.health()
        assert status.failures == 0 and status.last_error is None and status.ticks >= 1
    finally:
        supervisor.stop()
    assert not supervisor.health()[0].running


def test_any_exception_is_survived_and_wake_runs_a_sleeping_loop() -> None:
    seen: list[str] = []

    def tick() -> None:
        seen.append("tick")
        if len(seen) == 1:
            raise LookupError("a bug")

    supervisor = Supervisor(backoff=Backoff(base=0.001, cap=0.001))
    supervisor.add(Periodic("sleepy", 3600, tick, wakeable=True)).start()
    try:
        supervisor.wake()  # a schedule's first run comes after one interval, or a wake-up
        wait_for(lambda: len(seen) == 2, what="the retry after the error")
        supervisor.wake()  # the interval is an hour: only the wake-up runs it again
        wait_for(lambda: len(seen) == 3, what="the wake-up")
        assert supervisor.healthy
    finally:
        supervisor.stop()


def test_a_failing_schedule_is_reported_but_does_not_gate_readiness() -> None:
    def broken() -> None:
        raise RuntimeError("retention bug")

    supervisor = Supervisor(backoff=Backoff(base=0.001, cap=0.001))
    supervisor.add(Periodic("retention", 0.001, broken)).start()
    try:
        wait_for(lambda: supervisor.health()[0].failures >= 2, what="failures")
        assert not supervisor.health()[0].healthy
        assert supervisor.healthy  # only job workers (critical loops) gate readiness
    finally:
        supervisor.stop()
