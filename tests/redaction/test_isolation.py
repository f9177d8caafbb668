"""Worker-process isolation (redaction.isolation): a timeout that really stops the work.

A test-only detector, registered explicitly in each worker through the registry API, blocks
forever (on an Event nobody sets) or kills its process when the image's top-left pixel has a
given colour, and otherwise reports one face. No test sleeps to time anything.
"""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np
import pytest

from redaction.detectors.base import ModelInfo
from redaction.isolation import RedactionWorkerPool, WorkerUnavailable
from redaction.policy import LeakCheckPolicy, PlatePolicy, RedactionPolicy
from redaction.registry import DetectorNames, register_detector
from redaction.types import BGRImage, Label, Region

HANG = (0, 0, 255)
CRASH = (255, 0, 0)
CRASH_EXIT_CODE = 77
POLICY = RedactionPolicy(
    plates=PlatePolicy(enabled=False), leak_check=LeakCheckPolicy(enabled=False)
)
NAMES = DetectorNames(faces="test-trap", leak_faces="test-trap")
FACE = (40, 30, 50, 60)

pytestmark = pytest.mark.timeout(90)


class TrapDetector:
    name = "test-trap"
    model = ModelInfo("trap", "none", "tests", "0", "0" * 64, "Apache-2.0")

    def detect(self, image: BGRImage) -> list[Region]:
        corner = tuple(int(v) for v in image[0, 0])
        if corner == HANG:
            threading.Event().wait()  # never set: only SIGKILL ends this
        if corner == CRASH:
            os._exit(CRASH_EXIT_CODE)  # as a segfault or the OOM killer would, no cleanup
        return [Region(Label.FACE, *FACE, 0.9, self.name)]


def trap_factory(policy: RedactionPolicy, threads: int) -> TrapDetector:
    return TrapDetector()


def register_trap() -> None:
    """Runs first in each worker process (spawned: nothing is inherited from the test)."""
    register_detector("test-trap", trap_factory, replace=True)


def png(corner: tuple[int, int, int] = (10, 200, 10)) -> bytes:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
    image[0, 0] = corner
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def dead(pid: int | None) -> bool:
    assert pid is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def assert_redacted(data: bytes | None) -> None:
    assert data is not None
    original = cv2.imdecode(np.frombuffer(png(), np.uint8), cv2.IMREAD_COLOR)
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    x, y, w, h = FACE
    centre = (slice(y + h // 3, y + 2 * h // 3), slice(x + w // 3, x + 2 * w // 3))
    assert (out[centre] != original[centre]).any(axis=2).mean() > 0.9
    assert np.array_equal(out[120:, 150:], original[120:, 150:])


def pool(workers: int = 1) -> RedactionWorkerPool:
    return RedactionWorkerPool(
        policy=POLICY,
        workers=workers,
        timeout_seconds=1.5,
        detector_names=NAMES,
        output_format=None,
        initializer=register_trap,
        startup_timeout_seconds=60,
    )


def test_a_hanging_item_is_killed_quarantined_and_the_pool_recovers() -> None:
    with pool() as workers:
        workers.wait_ready(60)
        first_pid = workers.worker_pids[0]
        outcome = workers.redact(png(HANG))
        assert outcome.status == "quarantined" and outcome.data is None
        assert [r["code"] for r in outcome.reasons] == ["redaction-timeout"]
        assert 1400 <= outcome.elapsed_ms < 30_000
        assert dead(first_pid), "the hung worker was killed"
        after = workers.redact(png())
        assert after.status == "released", after.reasons
        assert_redacted(after.data)
        assert workers.restarts == 1 and workers.worker_pids[0] != first_pid


def test_a_crashing_worker_quarantines_its_item_and_is_respawned() -> None:
    with pool() as workers:
        outcome = workers.redact(png(CRASH))
        assert outcome.status == "quarantined"
        assert outcome.reasons[0]["code"] == "worker-crashed"
        assert outcome.reasons[0]["details"]["exitcode"] == CRASH_EXIT_CODE
        after = workers.redact(png())
        assert after.status == "released"
        assert_redacted(after.data)
        assert after.regions[0]["detector"] == "test-trap"


def test_one_hung_worker_does_not_block_the_other() -> None:
    with pool(workers=2) as workers:
        workers.wait_ready(60)
        hung = workers.submit(png(HANG))
        fine = [workers.submit(png()) for _ in range(3)]
        assert all(f.result(timeout=30).status == "released" for f in fine)
        assert hung.result(timeout=30).reasons[0]["code"] == "redaction-timeout"


def test_rejected_input_and_no_process_left_after_close() -> None:
    with pool() as workers:
        outcome = workers.redact(b"GIF89a" + b"\0" * 32)
        assert outcome.status == "rejected"
        assert outcome.reasons[0]["code"] == "unsupported-format"
        pids = workers.worker_pids
    assert all(dead(pid) for pid in pids)
    with pytest.raises(RuntimeError):
        workers.submit(png())


def test_a_worker_that_cannot_load_its_detectors_quarantines_everything() -> None:
    names = DetectorNames(faces="no-such-detector", leak_faces="test-trap")
    with RedactionWorkerPool(
        policy=POLICY, workers=1, timeout_seconds=5, detector_names=names,
        initializer=register_trap,
    ) as workers:  # fmt: skip
        with pytest.raises(WorkerUnavailable, match="could not load"):
            workers.wait_ready(60)
        outcome = workers.redact(png())
        assert outcome.status == "quarantined"
        assert outcome.reasons[0]["code"] == "unknown-detector"


@pytest.mark.timeout(60)
def test_closing_on_error_kills_running_work_instead_of_waiting() -> None:
    workers = RedactionWorkerPool(
        policy=POLICY, workers=1, timeout_seconds=3600, detector_names=NAMES,
        initializer=register_trap,
    )  # fmt: skip
    workers.wait_ready(60)
    pids = workers.worker_pids
    hung = workers.submit(png(HANG))
    queued = workers.submit(png())
    workers.close(cancel_pending=True)  # returns long before the one-hour timeout
    assert hung.cancelled() or hung.result().reasons[0]["code"] == "worker-crashed"
    assert queued.cancelled()
    assert all(dead(pid) for pid in pids) and workers.worker_pids == [None]
