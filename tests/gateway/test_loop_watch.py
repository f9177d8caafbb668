"""The gateway names what blocks its event loop: the loop thread's stack, logged while the
stall lasts, and the stall's length in `gateway_event_loop_stall_seconds` once it is over."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.gateway.live_server import serve_on_loop

pytestmark = pytest.mark.db
WITHIN = 20.0  # a bound on a hang: the watch reports within a second or not at all


def _stalls(address: tuple[str, int]) -> float:
    text = httpx.get(f"http://{address[0]}:{address[1]}/metrics", timeout=WITHIN).text
    for line in text.splitlines():
        if line.startswith("gateway_event_loop_stall_seconds_count"):
            return float(line.split()[-1])
    return 0.0


def _until(check, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WITHIN
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling the log and the metrics, not timing anything


def a_handler_that_blocks(release: threading.Event) -> None:
    release.wait(WITHIN)


def test_a_blocked_loop_is_logged_with_its_stack_and_counted(ctx, caplog) -> None:
    caplog.set_level("WARNING", logger="gateway.loop_watch")
    with serve_on_loop(ctx) as (address, loop):
        before = _stalls(address)
        release = threading.Event()
        loop.call_soon_threadsafe(a_handler_that_blocks, release)

        def blocked() -> list:  # type: ignore[type-arg]
            return [r for r in caplog.records if r.getMessage() == "event loop blocked"]

        _until(blocked, "the stall to be logged")
        (record,) = blocked()
        assert "a_handler_that_blocks" in record.stack  # type: ignore[attr-defined]
        assert record.blocked_ms >= 500  # type: ignore[attr-defined]
        release.set()
        _until(lambda: _stalls(address) > before, "the stall to be counted")
        turning = [r for r in caplog.records if r.getMessage() == "event loop turning again"]
        assert len(turning) == 1 and turning[0].stalled_ms >= 500  # type: ignore[attr-defined]
