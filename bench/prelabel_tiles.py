"""Finer tiles for crowds and far cars: chosen on other photos, measured once on the ground truth.

    .venv/bin/python bench/prelabel_tiles.py choose    # development photos only
    .venv/bin/python bench/prelabel_tiles.py measure   # the ground truth (after choosing)

The variants were fixed before any run: `current` (the backend's views today: the whole image
and two square tiles of the short side, or four quarters), `grid66` (the whole image and a grid
of square tiles of 0.66 x the short side, stride 0.75 x tile) and `current+grid66`.

`choose` uses photos that are not in the ground truth: the development part of the face split
(bench/face_split.json, faces-masks, CC0) with at least four labelled faces of 10 px or more, and
plates-dashcam frames (MIT) with a labelled plate, both redacted by the real engine. Without
person/vehicle boxes there, recall is proxied: a labelled face counts as found when a person box
(score >= 0.4) holds its centre, a labelled plate when a vehicle box does. `measure` runs the
same variants on the ground truth's redacted copies (bench/out/prelabels-inputs/, left by
prelabel_accuracy.py) with the accuracy bench's matching. CPU ms per image on one thread.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import cv2  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = (
    Path("/work/shared/data")
    if Path("/work/shared/data").is_dir()
    else REPO.parent / "shared" / "data"
)
OUT = REPO / "bench" / "out" / "prelabel-tiles"
RESULTS = REPO / "bench" / "results"
THRESHOLD = 0.4


def grid(width: int, height: int, frac: float) -> list[Any]:
    from ml_backend.sources.nanodet import View

    side = round(frac * min(width, height))
    step = max(1, round(0.75 * side))
    out = []
    nx = 1 + math.ceil(max(0, width - side) / step)
    ny = 1 + math.ceil(max(0, height - side) / step)
    for j in range(ny):
        for i in range(nx):
            x = min(i * step, width - side)
            y = min(j * step, height - side)
            out.append(View(x, y, side, side))
    return out


def variants() -> dict[str, Any]:
    from ml_backend.sources import nanodet

    current = nanodet.views

    def grid66(w: int, h: int, *, tiles: bool = True) -> list[Any]:
        del tiles  # the same signature as nanodet.views
        return [nanodet.View(0, 0, w, h), *grid(w, h, 0.66)]

    def both(w: int, h: int, *, tiles: bool = True) -> list[Any]:
        return [*current(w, h, tiles=tiles), *grid(w, h, 0.66)]

    return {"current": current, "grid66": grid66, "current+grid66": both}


def detect_all(images: list[Any], plan: Any) -> tuple[list[dict[str, list[Any]]], float]:
    from ml_backend.settings import MLBackendSettings
    from ml_backend.sources import nanodet

    nanodet.views = plan
    nanodet._SHARED.clear()
    settings = MLBackendSettings()
    persons, vehicles = nanodet.PersonSource(settings), nanodet.VehicleSource(settings)
    out, cpu = [], 0.0
    for image in images:
        start = time.process_time()
        found = [*persons.detect(image), *vehicles.detect(image)]
        cpu += time.process_time() - start
        by: dict[str, list[Any]] = {"person": [], "vehicle": []}
        for d in found:
            if d.score >= THRESHOLD:
                by["person" if d.model_class == "person" else "vehicle"].append(d)
        out.append(by)
    return out, cpu * 1000 / max(1, len(images))


def dev_set() -> tuple[list[Path], list[list[tuple[str, float, float]]]]:
    """Photos outside the ground truth, with face/plate centres as recall proxies."""
    gt = json.loads((REPO / "bench" / "data" / "prelabels_ground_truth.json").read_text())
    taken = {t["data"]["image"].removeprefix("sha256:") for t in gt}
    split = json.loads((REPO / "bench" / "face_split.json").read_text())["sets"]["faces-masks"]
    dev = set(split["dev"])
    paths, centres = [], []
    faces = json.loads((SHARED / "faces-masks" / "gt.json").read_text())["images"]
    for img in sorted(faces, key=lambda i: i["file"]):
        big = [b for b in img["boxes"] if min(b["w"], b["h"]) >= 10]
        path = SHARED / "faces-masks" / img["file"]
        if img["file"] not in dev or len(big) < 4 or len(paths) >= 30:
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() in taken:
            continue
        paths.append(path)
        centres.append([("person", b["x"] + b["w"] / 2, b["y"] + b["h"] / 2) for b in big])
    plates = json.loads((SHARED / "plates-dashcam" / "gt.json").read_text())["images"]
    n = 0
    for img in sorted(plates, key=lambda i: i["file"]):
        path = SHARED / "plates-dashcam" / img["file"]
        if not img["boxes"] or n >= 14:
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() in taken:
            continue
        n += 1
        paths.append(path)
        centres.append(
            [("vehicle", b["x"] + b["w"] / 2, b["y"] + b["h"] / 2) for b in img["boxes"]]
        )
    return paths, centres


def redacted(paths: list[Path], cache: Path) -> list[Any]:
    import bench.prelabel_accuracy as acc

    cache.mkdir(parents=True, exist_ok=True)
    files = [
        cache / f"{hashlib.sha256(p.read_bytes()).hexdigest()[:16]}.redacted.png" for p in paths
    ]
    if not all(f.is_file() for f in files):
        staged = []
        for p, f in zip(paths, files, strict=True):
            target = cache / f.name.replace(".redacted.png", p.suffix)
            target.write_bytes(p.read_bytes())
            staged.append(target)
        acc.OUT = OUT / "gateway"
        for f, pixels in zip(files, acc.redact_all(staged), strict=True):
            cv2.imwrite(str(f), pixels)
    return [cv2.imread(str(f)) for f in files]


def choose() -> dict[str, Any]:
    paths, centres = dev_set()
    images = redacted(paths, OUT / "dev")
    rows: dict[str, Any] = {}
    for name, plan in variants().items():
        found, cpu = detect_all(images, plan)
        hit = {"person": [0, 0], "vehicle": [0, 0]}
        boxes = {"person": 0, "vehicle": 0}
        for by, cs in zip(found, centres, strict=True):
            for cls, cx, cy in cs:
                hit[cls][1] += 1
                inside = any(d.x <= cx <= d.x + d.w and d.y <= cy <= d.y + d.h for d in by[cls])
                hit[cls][0] += int(inside)
            for cls in boxes:
                boxes[cls] += len(by[cls])
        rows[name] = {
            "face_centres_in_a_person_box": f"{hit['person'][0]}/{hit['person'][1]}",
            "plate_centres_in_a_vehicle_box": f"{hit['vehicle'][0]}/{hit['vehicle'][1]}",
            "person_boxes": boxes["person"],
            "vehicle_boxes": boxes["vehicle"],
            "cpu_ms_per_image": round(cpu, 1),
        }
        print(name, rows[name], flush=True)
    return {"photos": len(paths), "rows": rows}


def measure() -> dict[str, Any]:
    import bench.prelabel_accuracy as acc

    gts = acc.ground_truth()
    cache = REPO / "bench" / "out" / "prelabels-inputs"
    images = [cv2.imread(str(cache / f"{g['sha256'][:16]}.redacted.png")) for g in gts]
    if any(i is None for i in images):
        raise SystemExit("run bench/prelabel_accuracy.py first (it leaves the redacted copies)")
    rows: dict[str, Any] = {}
    for name, plan in variants().items():
        found, cpu = detect_all(images, plan)
        totals = {c: acc.Counts() for c in ("person", "vehicle")}
        for g, by in zip(gts, found, strict=True):
            for cls in totals:
                preds: list[tuple[acc.Box, float]] = []
                for d in sorted(by[cls], key=lambda d: -d.score):
                    box = (d.x, d.y, d.x + d.w, d.y + d.h)
                    if cls == "vehicle" and any(acc.iou(box, b) > 0.5 for b, _ in preds):
                        continue
                    preds.append((box, d.score))
                totals[cls].add(acc.match(preds, g["boxes"][cls], 0.5))
        rows[name] = {**{c: v.row() for c, v in totals.items()}, "cpu_ms_per_image": round(cpu, 1)}
        print(name, rows[name], flush=True)
    return {"images": len(gts), "rows": rows}


if __name__ == "__main__":
    import os

    from bench.ml_backend import machine_info

    step = sys.argv[1]
    result = {"step": step, "machine": machine_info(), "load": os.getloadavg(),
              **(choose() if step == "choose" else measure())}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"prelabel-tiles-{step}-2026-12-02.json").write_text(
        json.dumps(result, indent=1) + "\n"
    )
