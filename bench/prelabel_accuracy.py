"""Pre-label precision and recall on redacted copies, against ground truth labelled in Label Studio.

    .venv/bin/python bench/prelabel_accuracy.py [--reuse] [--tag NAME]

(--reuse: take the redacted copies an earlier run left in bench/out/ instead of redacting again;
--tag: written as bench/results/prelabels-<date>-<tag>.md/.json)

Ground truth: bench/data/prelabels_ground_truth.json, Label Studio's own JSON export of a project
labelled in its editor (bench/prelabel_ground_truth.py; images named by SHA-256; see
bench/data/README.md): one submitted annotation per task, its `result` is the truth, the
task's predictions (the by-eye starting boxes) are ignored. The by-eye boxes
(bench/data/prelabels_hand_boxes_by_eye.json) are matched too, for the default sources on the
redacted copies, to show what the review in the editor changed. Each photo is found
by its digest in gateway/demo_photos or ../shared/data, ingested into a throw-away gateway and
redacted by the real isolated engine with the default policy: the detectors see what the ML
backend sees. Matching: greedy by score, one prediction per ground-truth box, IoU >= 0.5 (0.3
beside it, since the boxes are drawn by eye); vehicles are one class (car, truck, bus,
motorcycle, bicycle merged as the backend's label mapping does). Writes
bench/results/prelabels-<date>[-<tag>].md/.json.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GT_FILE = REPO / "bench" / "data" / "prelabels_ground_truth.json"
BY_EYE_FILE = REPO / "bench" / "data" / "prelabels_hand_boxes_by_eye.json"
SEARCH = (REPO / "gateway" / "demo_photos", REPO.parent / "shared" / "data",
          Path("/work/shared/data"))  # fmt: skip
RESULTS = REPO / "bench" / "results"
OUT = REPO / "bench" / "out" / "prelabels"
VEHICLES = {"car", "truck", "bus", "motorcycle", "bicycle"}
Box = tuple[float, float, float, float]


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Counts) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    def row(self) -> dict[str, Any]:
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": round(p, 3),
                "recall": round(r, 3)}  # fmt: skip


def iou(a: Box, b: Box) -> float:
    dx = min(a[2], b[2]) - max(a[0], b[0])
    dy = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, dx) * max(0.0, dy)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(preds: list[tuple[Box, float]], gts: list[Box], threshold: float) -> Counts:
    used: set[int] = set()
    tp = 0
    for box, _ in sorted(preds, key=lambda p: -p[1]):
        best, best_iou = -1, threshold
        for j, g in enumerate(gts):
            v = iou(box, g)
            if j not in used and v >= best_iou:
                best, best_iou = j, v
        if best >= 0:
            used.add(best)
            tp += 1
    return Counts(tp, len(preds) - tp, len(gts) - tp)


def find_images(digests: set[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in SEARCH:
        if not root.is_dir():
            continue
        for path in root.rglob("*.jpg"):
            if "plates-openalpr" in path.parts:  # AGPL set: never read
                continue
            if len(found) == len(digests):
                return found
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in digests and digest not in found:
                found[digest] = path
    return found


def ground_truth(path: Path = GT_FILE) -> list[dict[str, Any]]:
    """Each task's one submitted annotation (a Label Studio JSON export)."""
    tasks: list[dict[str, Any]] = json.loads(path.read_text())
    out = []
    for task in tasks:
        done = [a for a in task["annotations"] if not a.get("was_cancelled")]
        if len(done) != 1:
            raise SystemExit(f"task {task['id']}: {len(done)} annotations, expected one")
        boxes: dict[str, list[Box]] = {"person": [], "vehicle": []}
        width = height = 0
        for r in done[0]["result"]:
            if r["type"] != "rectanglelabels":
                raise SystemExit(f"task {task['id']}: unexpected region type {r['type']}")
            width, height = r["original_width"], r["original_height"]
            v = r["value"]
            x0, y0 = v["x"] * width / 100, v["y"] * height / 100
            box = (x0, y0, x0 + v["width"] * width / 100, y0 + v["height"] * height / 100)
            boxes[v["rectanglelabels"][0].lower()].append(box)
        out.append({"sha256": task["data"]["image"].removeprefix("sha256:"), "boxes": boxes,
                    "width": width, "height": height})  # fmt: skip
    return out


def redact_all(paths: list[Path]) -> list[np.ndarray]:
    """Each photo through a throw-away gateway and the real isolated engine (default policy)."""
    import bench.ml_backend as mlb
    from gateway.core.db import transaction
    from gateway.core.models import Asset
    from redaction.io import decode_image
    from redaction.policy import Limits

    mlb.OUT = OUT
    ctx, ids, _ = mlb.release_photos(paths)
    images = []
    with transaction(ctx.engine) as s:
        for path in paths:
            asset = s.get(Asset, ids[path.name])
            if asset is None or not asset.redacted_blob:
                raise SystemExit(f"{path.name} was not released by the engine")
            pixels = decode_image(ctx.store.get(asset.redacted_blob), limits=Limits()).pixels
            images.append(pixels)
    return images


def hog_people(image: np.ndarray) -> list[tuple[str, Box, float]]:
    """The former `people` source (OpenCV HOG, margin -> 1 - exp(-m)), for comparison."""
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
    h, w = image.shape[:2]
    if h < 128 or w < 64:
        return []
    rects, weights = hog.detectMultiScale(image, winStride=(8, 8), padding=(8, 8), scale=1.05)
    out = []
    for (x, y, bw, bh), m in zip(rects, np.asarray(weights).ravel(), strict=False):
        out.append(("person", (x, y, x + bw, y + bh), float(1 - np.exp(-max(0.0, m)))))
    return out


class Both:
    """The two default sources as the backend runs them."""

    def __init__(self, *sources: Any) -> None:
        self.sources = sources

    def detect(self, image: np.ndarray) -> list[Any]:
        return [d for s in self.sources for d in s.detect(image)]


def outline_stats(
    detectors: dict[str, Any], images: list[np.ndarray], threshold: float
) -> dict[str, Any]:
    """GrabCut outlines of the kept person boxes: CPU ms per person, how often GrabCut gives up
    (the box stays), and the share of the box the outline keeps. No mask ground truth exists
    here, so this measures cost and behaviour, not accuracy."""
    import time

    import cv2 as cv

    from ml_backend.masks import person_outline

    both = detectors["default sources (persons + vehicles)"]
    cpu, kept, fallbacks = [], [], 0
    for image in images:
        for d in both.detect(image):
            if d.model_class != "person" or d.score < threshold:
                continue
            start = time.process_time()
            points = person_outline(image, d)
            cpu.append((time.process_time() - start) * 1000)
            if points is None:
                fallbacks += 1
                continue
            area = cv.contourArea(np.asarray(points, dtype=np.float32))
            kept.append(area / max(1.0, d.w * d.h))
    return {
        "persons": len(cpu),
        "cpu_ms_median": round(float(np.median(cpu)), 1) if cpu else 0.0,
        "cpu_ms_p95": round(float(np.percentile(cpu, 95)), 1) if cpu else 0.0,
        "box_kept_instead": fallbacks,
        "outline_area_share_of_box_median": round(float(np.median(kept)), 3) if kept else 0.0,
        "outline_area_share_p10_p90": [round(float(np.percentile(kept, q)), 3) for q in (10, 90)]
        if kept
        else [],
    }


def main() -> None:
    from bench.ml_backend import machine_info
    from ml_backend.settings import MLBackendSettings
    from ml_backend.sources.nanodet import NanoDetModel, PersonSource, VehicleSource

    gts = ground_truth()
    paths = find_images({g["sha256"] for g in gts})
    missing = [g["sha256"][:12] for g in gts if g["sha256"] not in paths]
    if missing:
        raise SystemExit(f"ground-truth images not found: {missing}")
    machine = machine_info()
    ordered = [paths[g["sha256"]] for g in gts]
    # copies named by digest: the gateway keys assets by file name
    OUT.mkdir(parents=True, exist_ok=True)
    staged = []
    for g, p in zip(gts, ordered, strict=True):
        target = OUT.parent / "prelabels-inputs" / f"{g['sha256'][:16]}{p.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(p.read_bytes())
        staged.append(target)
    cached = [OUT.parent / "prelabels-inputs" / f"{g['sha256'][:16]}.redacted.png" for g in gts]
    if "--reuse" in sys.argv and all(p.is_file() for p in cached):
        redacted = [cv2.imread(str(p)) for p in cached]  # lossless copies of an earlier run
    else:
        redacted = redact_all(staged)
        for path, pixels in zip(cached, redacted, strict=True):
            cv2.imwrite(str(path), pixels)
    settings = MLBackendSettings()
    detectors: dict[str, Any] = {
        "default sources (persons + vehicles)": Both(
            PersonSource(settings), VehicleSource(settings)
        ),
        "nanodet+tiles alone": NanoDetModel(threads=1, tiles=True),
        "nanodet whole image alone": NanoDetModel(threads=1, tiles=False),
    }
    threshold = 0.4  # the former default of both sources; per-source ones: prelabel_thresholds.py
    runs: dict[str, dict[str, Any]] = {}
    eye = (
        {g["sha256"]: g["boxes"] for g in ground_truth(BY_EYE_FILE)}
        if BY_EYE_FILE.exists()
        else None
    )
    eye_totals = {(c, t): Counts() for c in ("person", "vehicle") for t in (0.5, 0.3)}
    for name, model in detectors.items():
        for copy in ("redacted", "original"):
            totals = {(c, t): Counts() for c in ("person", "vehicle") for t in (0.5, 0.3)}
            per_image = []
            for g, pixels, path in zip(gts, redacted, staged, strict=True):
                image = pixels if copy == "redacted" else cv2.imread(str(path))
                preds: dict[str, list[tuple[Box, float]]] = {"person": [], "vehicle": []}
                for d in model.detect(image):
                    if d.score < threshold:
                        continue
                    cls = "vehicle" if d.model_class in VEHICLES else "person"
                    box = (d.x, d.y, d.x + d.w, d.y + d.h)
                    if cls == "vehicle" and any(iou(box, b) > 0.5 for b, _ in preds[cls]):
                        continue  # car and truck on one object: one Vehicle label
                    preds[cls].append((box, d.score))
                if eye is not None and name.startswith("default") and copy == "redacted":
                    for cls in ("person", "vehicle"):
                        for t in (0.5, 0.3):
                            eye_totals[(cls, t)].add(match(preds[cls], eye[g["sha256"]][cls], t))
                row: dict[str, Any] = {"sha256": g["sha256"][:12]}
                for cls in ("person", "vehicle"):
                    for t in (0.5, 0.3):
                        c = match(preds[cls], g["boxes"][cls], t)
                        totals[(cls, t)].add(c)
                        if t == 0.5:
                            row[cls] = c.row()
                per_image.append(row)
            runs[f"{name}, {copy}"] = {
                "totals": {f"{c}@{t}": v.row() for (c, t), v in totals.items()},
                "per_image": per_image,
            }
    if eye is not None:
        runs["default sources, redacted, against the by-eye boxes before the editor review"] = {
            "totals": {f"{c}@{t}": v.row() for (c, t), v in eye_totals.items()}
        }
    # HOG baseline (persons only), redacted copies
    hog_totals = {0.5: Counts(), 0.3: Counts()}
    for g, pixels in zip(gts, redacted, strict=True):
        preds = [(b, s) for _, b, s in hog_people(pixels) if s >= 0.5]
        for t in (0.5, 0.3):
            hog_totals[t].add(match(preds, g["boxes"]["person"], t))
    runs["former HOG people source, redacted"] = {
        "totals": {f"person@{t}": v.row() for t, v in hog_totals.items()}
    }
    runs["person outlines (GrabCut), redacted"] = outline_stats(detectors, redacted, threshold)
    n_person = sum(len(g["boxes"]["person"]) for g in gts)
    n_vehicle = sum(len(g["boxes"]["vehicle"]) for g in gts)
    write_results(machine, runs, len(gts), n_person, n_vehicle, threshold)


def write_results(machine: dict[str, Any], runs: dict[str, dict[str, Any]], n_images: int,
                  n_person: int, n_vehicle: int, threshold: float) -> None:  # fmt: skip
    now = datetime.now(UTC)
    tag = sys.argv[sys.argv.index("--tag") + 1] if "--tag" in sys.argv else ""
    stem = RESULTS / (f"prelabels-{now:%Y-%m-%d}" + (f"-{tag}" if tag else ""))
    payload = {"date": now.isoformat(timespec="seconds"), "machine": machine, "runs": runs,
               "images": n_images, "persons": n_person, "vehicles": n_vehicle,
               "threshold": threshold}  # fmt: skip
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    lines = [
        f"# Pre-label precision and recall, {payload['date']}",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores (shared); commit "
        f"{machine['commit'][:12]}.",
        "",
        f"Ground truth: {n_images} CC0/MIT photos, {n_person} persons and {n_vehicle} vehicles, "
        "Label Studio's export of its editor (boxes drawn by eye before any detector ran, then "
        "reviewed and corrected in the editor; bench/data/README.md). Load average at start "
        f"{machine.get('loadavg_at_start')}. Redacted copies: the real engine, "
        f"default policy, as the ML backend sees them. Score threshold {threshold} (the "
        "sources' default until 2026-12-03, set before measuring; since then persons 0.42, "
        "vehicles 0.36: bench/prelabel_thresholds.py).",
        "",
        "| detector, copy | class | IoU | TP | FP | FN | precision | recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        if "totals" not in run:
            continue
        for key, row in run["totals"].items():
            cls, t = key.split("@")
            lines.append(f"| {name} | {cls} | {t} | {row['tp']} | {row['fp']} | {row['fn']} | "
                         f"{row['precision']:.3f} | {row['recall']:.3f} |")  # fmt: skip
    o = runs["person outlines (GrabCut), redacted"]
    lines += [
        "",
        f"Person outlines (GrabCut at 160 px) for the {o['persons']} kept person boxes on the "
        f"redacted copies: {o['cpu_ms_median']} ms CPU median ({o['cpu_ms_p95']} p95) a person; "
        f"GrabCut gave up (box kept) {o['box_kept_instead']} times; the outline covers "
        f"{o['outline_area_share_of_box_median']} of its box (median; 10th-90th percentile "
        f"{o['outline_area_share_p10_p90']}). No mask ground truth: cost and behaviour only.",
    ]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
