"""`fit`: per-project score thresholds learnt from the annotations Label Studio sends back.

For each annotation the backend compares what annotators drew with the candidates it finds on
the same redacted image: a candidate overlapping an annotated region of the same label
(IoU >= 0.5) is evidence for its score, one that overlaps nothing is evidence against it, and
annotated regions no candidate found are misses. Evidence is kept per annotation (an update
replaces it, a deletion removes it) as integer histograms; each label's threshold is the one
that maximises F1 over that evidence once enough has been seen. A changed threshold bumps the
project's revision, and so its model version.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml_backend.results import Labelled
from redaction.geometry import box_iou

BINS = 20
MIN_EVIDENCE = 5
MATCH_IOU = 0.5
_PROJECT_ID = re.compile(r"^[0-9]{1,18}$")

Box = tuple[float, float, float, float]


@dataclass
class Evidence:
    pos: list[int] = field(default_factory=lambda: [0] * BINS)
    neg: list[int] = field(default_factory=lambda: [0] * BINS)
    missed: int = 0

    def add(self, other: Evidence) -> None:
        self.pos = [a + b for a, b in zip(self.pos, other.pos, strict=True)]
        self.neg = [a + b for a, b in zip(self.neg, other.neg, strict=True)]
        self.missed += other.missed

    def size(self) -> int:
        return sum(self.pos) + sum(self.neg) + self.missed


@dataclass
class ProjectCalibration:
    revision: int = 0
    thresholds_milli: dict[str, int] = field(default_factory=dict)
    annotations: dict[str, dict[str, Evidence]] = field(default_factory=dict)

    def threshold(self, label: str) -> float | None:
        milli = self.thresholds_milli.get(label)
        return None if milli is None else milli / 1000

    def record(self, annotation_id: str, evidence: dict[str, Evidence] | None) -> bool:
        """Replace (or with None, drop) one annotation's evidence; True when thresholds moved."""
        if evidence is None:
            self.annotations.pop(annotation_id, None)
        else:
            self.annotations[annotation_id] = evidence
        totals: dict[str, Evidence] = {}
        for per_label in self.annotations.values():
            for label, ev in per_label.items():
                totals.setdefault(label, Evidence()).add(ev)
        fresh = {
            label: best_threshold_milli(ev)
            for label, ev in sorted(totals.items())
            if ev.size() >= MIN_EVIDENCE and sum(ev.pos) + sum(ev.neg) > 0
        }
        if fresh == self.thresholds_milli:
            return False
        self.thresholds_milli = fresh
        self.revision += 1
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "thresholds_milli": self.thresholds_milli,
            "annotations": {
                a: {label: ev.__dict__ for label, ev in per.items()}
                for a, per in self.annotations.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProjectCalibration:
        return cls(
            revision=int(data.get("revision", 0)),
            thresholds_milli={str(k): int(v) for k, v in data.get("thresholds_milli", {}).items()},
            annotations={
                str(a): {str(label): Evidence(**ev) for label, ev in per.items()}
                for a, per in data.get("annotations", {}).items()
            },
        )


def best_threshold_milli(ev: Evidence) -> int:
    """The bin edge maximising F1 = 2TP / (2TP + FP + FN) (the lowest of equal bests)."""
    best_f1, best_edge = -1.0, BINS // 2
    for edge in range(1, BINS):
        tp, fp = sum(ev.pos[edge:]), sum(ev.neg[edge:])
        fn = ev.missed + sum(ev.pos[:edge])
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        if f1 > best_f1:
            best_f1, best_edge = f1, edge
    return best_edge * 1000 // BINS


def score_bin(score: float) -> int:
    return min(BINS - 1, max(0, int(score * BINS)))


def evidence_for(
    candidates: Iterable[Labelled], annotated: Iterable[tuple[str, Box]]
) -> dict[str, Evidence]:
    """Match candidates to annotated boxes per label, best score first."""
    remaining: dict[str, list[Box]] = {}
    for label, box in annotated:
        remaining.setdefault(label, []).append(box)
    out: dict[str, Evidence] = {label: Evidence() for label in remaining}
    seen: list[tuple[str, Box]] = []
    for item in sorted(candidates, key=lambda c: -c.detection.score):
        d = item.detection
        box = (d.x, d.y, d.w, d.h)
        if any(lbl == item.label and box_iou(b, box) > MATCH_IOU for lbl, b in seen):
            continue  # the same object seen by another control
        seen.append((item.label, box))
        ev = out.setdefault(item.label, Evidence())
        boxes = remaining.get(item.label, [])
        match = next((b for b in boxes if box_iou(b, box) >= MATCH_IOU), None)
        if match is None:
            ev.neg[score_bin(d.score)] += 1
        else:
            boxes.remove(match)
            ev.pos[score_bin(d.score)] += 1
    for label, boxes in remaining.items():
        out[label].missed += len(boxes)
    return out


def project_key(project: object) -> str | None:
    """Label Studio's project id from `"<id>.<created>"` or an int; None when unusable."""
    text = str(project).split(".", 1)[0].strip()
    return text if _PROJECT_ID.match(text) else None


class CalibrationStore:
    """One JSON file per project, written atomically; a lock serialises writers in-process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def _path(self, project: str) -> Path:
        if not _PROJECT_ID.match(project):
            raise ValueError(f"not a Label Studio project id: {project!r}")
        return self.root / f"project-{project}.json"

    def load(self, project: str) -> ProjectCalibration:
        path = self._path(project)
        if not path.exists():
            return ProjectCalibration()
        return ProjectCalibration.from_json(json.loads(path.read_text()))

    def update(
        self, project: str, annotation_id: str, evidence: dict[str, Evidence] | None
    ) -> tuple[ProjectCalibration, bool]:
        with self._lock:
            calibration = self.load(project)
            changed = calibration.record(annotation_id, evidence)
            self._write(self._path(project), calibration.to_json())
            return calibration, changed

    def _write(self, path: Path, data: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
