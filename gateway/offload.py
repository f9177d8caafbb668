"""CPU-heavy request work runs in worker threads, never on the event loop.

Decoding and validating an image, hashing and sealing it, writing it with fsync: any of
these on the event loop stalls every other request (`/health`, Label Studio's webhooks, which
it gives 1 s). Routes hand such work to `run_cpu_bound`, which runs it in a thread under one
bounded limiter per app, so a burst of uploads queues for those threads instead of taking
the threads every other synchronous route and dependency uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from starlette.applications import Starlette

T = TypeVar("T")
CPU_THREADS = 1  # measured: one thread beats two on 2 cores (GIL contention with the loop)


def cpu_limiter(app: Starlette) -> anyio.CapacityLimiter:
    """One limiter per app (made on first use, inside the app's event loop)."""
    limiter: anyio.CapacityLimiter | None = getattr(app.state, "cpu_limiter", None)
    if limiter is None:
        limiter = anyio.CapacityLimiter(CPU_THREADS)
        app.state.cpu_limiter = limiter
    return limiter


async def run_cpu_bound(app: Starlette, fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn, limiter=cpu_limiter(app))
