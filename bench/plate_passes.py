"""Plate recall of pass variants from cached detector passes (issue 20, the plate pass per pass).

    BENCH_SHARED=/work/shared .venv/bin/python -m bench.plate_passes cache --sets plates-dashcam
    BENCH_SHARED=/work/shared .venv/bin/python -m bench.plate_passes score

`cache` runs each text-detector pass once per image and stores its boxes (score floor 0.1):
the native ("near") pass in fp32 at its usual scale and at 0.5x / 0.75x of it, and the far
pass at its usual scale in fp32 and in bf16. `score` combines the cached passes into the plate
detector's variants (which passes, which precision, which box threshold per pass), runs the
recogniser and `PlateShape` on the candidates exactly as `PlateDetector.detect` does (readings
cached per box), grows the boxes by the policy margin and scores them with the shared
`eval_redaction.py`; on plate-free photos (faces-masks) it counts plate boxes per photo.
Every variant's boxes equal what `PlateDetector` with that configuration returns, since the
passes are deterministic. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.scoring import SHARED, score, summary
from redaction.detectors.ocr import Reading, TextBox, TextDetectorModel, TextRecognizerModel
from redaction.detectors.plates import PlateShape, drop_nested, select_plates
from redaction.engine import grow
from redaction.policy import PlatePolicy, RedactionPolicy
from redaction.types import Label, Region

CACHE = Path("/tmp/plate_passes")  # noqa: S108
FLOOR = 0.1
NEAR_FRACTIONS = (0.5, 0.75)


def _load(path: Path) -> Any:
    return pickle.loads(path.read_bytes())  # noqa: S301 (this script's own cache in /tmp)


def base_scales(width: int, height: int) -> tuple[float, float | None]:
    """Today's near and far scales (`pass_scales` with the default policy)."""
    near = min(1.0, 1600 / max(width, height))
    far = min(2.0, (4_000_000 / (width * height)) ** 0.5)
    return near, (far if far > near * 1.25 else None)


def cache(sets: list[str]) -> None:
    fp32 = TextDetectorModel(threads=1, box_threshold=FLOOR, runtime="openvino")
    bf16 = TextDetectorModel(threads=1, box_threshold=FLOOR, runtime="openvino-bf16")
    print("precisions:", fp32.precision, bf16.precision, flush=True)
    for name in sets:
        folder = SHARED / "data" / name
        out = CACHE / f"{name}.pkl"
        done: dict[str, Any] = _load(out) if out.exists() else {}
        for i, entry in enumerate(json.loads((folder / "gt.json").read_text())["images"]):
            image = cv2.imread(str(folder / entry["file"]), cv2.IMREAD_COLOR)
            h, w = image.shape[:2]
            near, far = base_scales(w, h)
            record = done.setdefault(
                entry["file"], {"w": w, "h": h, "near": near, "far": far, "passes": {}}
            )
            todo = {"near": (fp32, near)}
            if far is not None:
                todo |= {"far": (fp32, far), "far-bf16": (bf16, far)}
                for f in NEAR_FRACTIONS:
                    todo[f"near{f}"] = (fp32, near * f)
                    todo[f"near{f}-bf16"] = (bf16, near * f)
            for key, (model, scale) in todo.items():
                if key not in record["passes"]:
                    record["passes"][key] = _boxes(model.detect(image, scale=scale))
            if i % 25 == 0:
                out.write_bytes(pickle.dumps(done))
                print(name, i, flush=True)
        out.write_bytes(pickle.dumps(done))


def _boxes(boxes: list[TextBox]) -> list[tuple[list[list[float]], float]]:
    return [(b.quad.tolist(), b.score) for b in boxes]


@dataclass(frozen=True)
class Variant:
    name: str
    near: str  # cached pass key used when a far pass runs ("near", "near0.5", ... or "")
    far: str  # "far" or "far-bf16"
    near_threshold: float = 0.3
    far_threshold: float = 0.3
    min_ratio: float = 0.0
    """The reduced near pass is used only when far / near >= min_ratio (else the native one)."""
    read_first: bool = False
    """`select_plates`: a box nested in a larger one is read when the larger one is rejected
    (else, as before, nested boxes are dropped before reading: a larger box the recogniser
    rejects hides the plate inside it)."""


VARIANTS = [
    Variant("today", "near", "far"),
    Variant("a-far-bf16", "near", "far-bf16"),
    Variant("a-far-bf16-t0.25", "near", "far-bf16", far_threshold=0.25),
    Variant("a-far-bf16-t0.2", "near", "far-bf16", far_threshold=0.2),
    Variant("skip-near", "", "far"),
    Variant("c-near0.5", "near0.5", "far"),
    Variant("c-near0.75", "near0.75", "far"),
    Variant("c-near0.5-if2x", "near0.5", "far", min_ratio=1.99),
    Variant("c-near0.75-if2x", "near0.75", "far", min_ratio=1.99),
    Variant("d-bf16-near0.5-if2x", "near0.5", "far-bf16", min_ratio=1.99),
    Variant("d-bf16-near0.75-if2x", "near0.75", "far-bf16", min_ratio=1.99),
]
VARIANTS += [
    Variant(f"{v.name}-rf", v.near, v.far, v.near_threshold, v.far_threshold, v.min_ratio, True)
    for v in VARIANTS
]
VARIANTS += [
    Variant("e-near0.75bf16-if2x-rf", "near0.75-bf16", "far-bf16", min_ratio=1.99, read_first=True),
    Variant("e-near0.5bf16-if2x-rf", "near0.5-bf16", "far-bf16", min_ratio=1.99, read_first=True),
]


class Reader:
    """The recogniser with its readings cached per (file, box)."""

    def __init__(self) -> None:
        self._model = TextRecognizerModel(threads=1, runtime="openvino")
        self._path = CACHE / "readings.pkl"
        self._cache: dict[Any, tuple[str, float]] = _load(self._path) if self._path.exists() else {}

    def read(self, key: str, image_path: Path, boxes: list[TextBox]) -> list[tuple[str, float]]:
        keys = [(key, b.quad.round(2).tobytes()) for b in boxes]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        if todo:
            image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
            for i, r in zip(todo, self._model.read(image, [boxes[i] for i in todo]), strict=True):
                self._cache[keys[i]] = (r.text, r.score)
        return [self._cache[k] for k in keys]

    def save(self) -> None:
        self._path.write_bytes(pickle.dumps(self._cache))


def plates(
    record: dict[str, Any], variant: Variant, reader: Reader, key: str, path: Path
) -> list[Region]:
    shape = PlateShape()
    chosen: list[tuple[str, float]] = []
    if record["far"] is None:
        chosen = [("near", variant.near_threshold)]
    else:
        near = variant.near
        if near and near != "near" and record["far"] / record["near"] < variant.min_ratio:
            near = "near"
        if near:
            chosen.append((near, variant.near_threshold))
        chosen.append((variant.far, variant.far_threshold))
    candidates = []
    for pass_key, threshold in chosen:
        for quad, s in record["passes"][pass_key]:
            box = TextBox(np.array(quad, dtype=np.float32), s)
            if s >= threshold and shape.fits(box):
                candidates.append(box)

    def read(boxes: list[TextBox]) -> list[Reading]:
        return [Reading(t, s) for t, s in reader.read(key, path, boxes)] if boxes else []

    if variant.read_first:
        plates = select_plates(candidates, read, shape)
    else:  # before: nested boxes dropped before reading
        kept = drop_nested(candidates)
        plates = [b for b, r in zip(kept, read(kept), strict=True)
                  if shape.reads_like_plate(b, r.text, r.score)]  # fmt: skip
    regions = []
    for box in plates:
        x, y, bw, bh = box.bbox()
        regions.append(Region(Label.PLATE, x, y, bw, bh, box.score, "pp-ocrv4-plates"))
    return regions


def score_all(sets: list[str], free: list[str], names: list[str] | None) -> dict[str, Any]:
    reader = Reader()
    policy = RedactionPolicy(plates=PlatePolicy())
    results: dict[str, Any] = {}
    for variant in VARIANTS:
        if names and variant.name not in names:
            continue
        results[variant.name] = {}
        for name in [*sets, *free]:
            folder = SHARED / "data" / name
            records = _load(CACHE / f"{name}.pkl")
            lines, count, area = [], 0, 0.0
            for file, record in records.items():
                found = plates(record, variant, reader, f"{name}/{file}", folder / file)
                w, h = record["w"], record["h"]
                grown = [grow(r, policy=policy, width=w, height=h) for r in found]
                count += len(grown)
                area += sum(r.w * r.h for r in grown) / (w * h)
                claims = [{"label": "plate", "x": r.x, "y": r.y, "w": r.w, "h": r.h} for r in grown]
                lines.append(json.dumps({"file": file, "regions": claims}))
            out = CACHE / f"{variant.name}.{name}.jsonl"
            out.write_text("\n".join(lines) + "\n")
            n = max(1, len(lines))
            if name in free:
                line = f"plate boxes/photo {count / n:.3f}  masked area {area / n:.4f}"
                results[variant.name][name] = {
                    "images": n,
                    "boxes_per_photo": round(count / n, 4),
                    "masked_area": round(area / n, 5),
                }
            else:
                score(folder, out, missed=0)
                line = summary(out.with_suffix(".score.json"), "plate", over_digits=4)
                data = json.loads(out.with_suffix(".score.json").read_text())
                scored = data["labels"]["plate"]
                results[variant.name][name] = {
                    "images": n,
                    "recall@0.9": scored["recall@0.9"],
                    "buckets": {
                        b: scored["buckets"].get(b, {}).get("recall@0.9")
                        for b in ("<20", "20-50", ">50")
                    },
                    "over_redaction": data["over_redaction"]["mean"],
                }
            print(f"{variant.name:28s} {name:16s} {line}", flush=True)
        reader.save()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("command", choices=["cache", "score"])
    ap.add_argument("--sets", nargs="+", default=["plates-dashcam", "plates-openalpr"])
    ap.add_argument("--free-sets", nargs="*", default=["faces-masks"])
    ap.add_argument("--variants", nargs="*", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    cv2.setNumThreads(1)
    if args.command == "cache":
        cache([*args.sets, *args.free_sets])
        return
    results = score_all(args.sets, args.free_sets, args.variants)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
