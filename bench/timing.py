"""The interleaved CPU-time loop of the speed benchmarks (`bench/plate_speed.py`,
`bench/faces_speed.py`): every item goes through every variant before the next item is read,
the order rotated so that no variant always runs first (cold caches) or last, each call timed
with `time.process_time()` (this process's CPU: other load on a shared machine inflates it
less than wall time)."""

from __future__ import annotations

import time
from collections.abc import Callable


def interleaved_cpu(
    count: int,
    names: list[str],
    call: Callable[[str, int], object],
    *,
    after: Callable[[str, int], object] | None = None,
) -> dict[str, float]:
    """CPU seconds of each variant in `names` over items 0..count-1: `call(name, index)` is
    timed, `after(name, index)` (clean-up) is not."""
    cpu = dict.fromkeys(names, 0.0)
    for index in range(count):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            start = time.process_time()
            call(name, index)
            cpu[name] += time.process_time() - start
            if after is not None:
                after(name, index)
    return cpu
