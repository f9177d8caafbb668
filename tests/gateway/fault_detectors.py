"""Detectors for the fault tests, registered in each redaction worker process.

`fault-faces` reports one face; when the trap directory holds a file `hang-once`, the next
image to reach it renames that file to `entered` (the test now knows the image is inside the
worker process) and waits until the test removes `entered`, or kills the process. `fault-none`
finds nothing (plates, text and the leak check). The directory comes from the environment,
which spawned workers inherit. Polling a file is the only channel into a spawned process."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from redaction.detectors.base import ModelInfo
from redaction.policy import RedactionPolicy
from redaction.registry import DetectorNames, register_detector
from redaction.types import BGRImage, Label, Region

TRAP_DIR_ENV = "GATEWAY_TEST_TRAP_DIR"
NAMES = DetectorNames(
    faces="fault-faces", plates="fault-none", text="fault-none", leak_faces="fault-none"
)
FACE = (20, 20, 40, 40)


class FaultFaces:
    name = "fault-faces"
    model = ModelInfo("fault-faces", "none", "tests", "0", "0" * 64, "Apache-2.0")

    def detect(self, image: BGRImage) -> list[Region]:
        del image
        trap = Path(os.environ[TRAP_DIR_ENV])
        try:
            (trap / "hang-once").rename(trap / "entered")
        except FileNotFoundError:
            pass
        else:
            while (trap / "entered").exists():
                threading.Event().wait(0.02)
        return [Region(Label.FACE, *FACE, 0.9, self.name)]


class FindsNothing:
    name = "fault-none"
    model = ModelInfo("fault-none", "none", "tests", "0", "0" * 64, "Apache-2.0")

    def detect(self, image: BGRImage) -> list[Region]:
        del image
        return []


def _faces(policy: RedactionPolicy, threads: int) -> FaultFaces:
    del policy, threads
    return FaultFaces()


def _none(policy: RedactionPolicy, threads: int) -> FindsNothing:
    del policy, threads
    return FindsNothing()


def register() -> None:
    register_detector("fault-faces", _faces, replace=True)
    register_detector("fault-none", _none, replace=True)
