"""Licence-plate recall: run a PlateDetector configuration over the plate sample sets, write the
regions it would mask (grown by PlatePolicy.margin x box height, as the engine does) and score
them with the shared `eval_redaction.py --regions`. On plate-free photos (faces-masks) it counts
the plate boxes per photo instead (all of them are false).

    .venv/bin/python -m bench.plate_recall --name default [--no-far] [--far-scale 2]
        [--far-precision bf16] [--near-with-far 0.75] [--far-threshold 0.3] ...

Prints one line per set: recall@0.9 overall and by short-side bucket, over-redaction, and
detector CPU ms/image (process time) on the configured number of onnxruntime threads.
Needs ../shared/data (not part of the project).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2

from bench.plate_int8 import int8_detector
from bench.scoring import SHARED, score, summary
from redaction.detectors.ocr import TextDetectorModel
from redaction.detectors.plates import PlateDetector, PlateShape
from redaction.detectors.runtime import RUNTIMES, bf16_runtime
from redaction.engine import grow
from redaction.policy import PlatePolicy, RedactionPolicy


def build(args: argparse.Namespace) -> PlateDetector:
    shape = PlateShape(
        min_chars=args.min_chars,
        read_min_height=args.read_min_height,
        min_aspect=args.min_aspect,
        max_aspect=args.max_aspect,
    )
    near_runtime = bf16_runtime(args.runtime) if args.near_precision == "bf16" else args.runtime
    text_detector = TextDetectorModel(
        threads=args.threads,
        box_threshold=args.threshold,
        runtime=near_runtime,
        exact_graph=not args.plain_graph,
    )
    common: dict[str, Any] = {
        "threshold": args.threshold,
        "far_pass": not args.no_far,
        "far_scale": args.far_scale,
        "max_far_pixels": args.max_far_pixels,
        "shape": shape,
        "threads": args.threads,
        "runtime": args.runtime,
    }
    if args.int8 is not None:  # bench/plate_int8.py: the int8 detector on one pass or both
        int8 = int8_detector(args.int8, threads=args.threads, box_threshold=args.threshold)
        far = text_detector
        if args.int8_passes in ("far", "both"):
            far = int8_detector(
                args.int8,
                threads=args.threads,
                box_threshold=args.far_threshold or args.threshold,
                pixel_threshold=args.far_pixel_threshold,
            )
        near = int8 if args.int8_passes in ("near", "both") else text_detector
        return PlateDetector(
            text_detector=near,
            far_text_detector=far,
            far_threshold=args.far_threshold or args.threshold,
            near_with_far=args.near_with_far,
            **common,
        )
    return PlateDetector(
        text_detector=text_detector,
        threshold=args.threshold,
        far_pass=not args.no_far,
        far_scale=args.far_scale,
        max_far_pixels=args.max_far_pixels,
        far_precision=args.far_precision,
        near_precision=args.near_precision,
        far_threshold=args.far_threshold,
        near_with_far=args.near_with_far,
        far_rows=args.far_rows,
        read_precision=args.read_precision,
        read_min_width=args.read_min_width,
        shape=shape,
        threads=args.threads,
        runtime=args.runtime,
    )


def run_set(
    folder: Path, out: Path, args: argparse.Namespace, detector: PlateDetector
) -> tuple[float, float, float]:
    """Write the claims JSONL; return CPU ms/image, regions/image and masked area share."""
    gt = json.loads((folder / "gt.json").read_text())
    policy = RedactionPolicy(plates=PlatePolicy(margin=args.margin))
    elapsed, count, area = 0.0, 0, 0.0
    lines = []
    for entry in gt["images"][: args.limit]:
        image = cv2.imread(str(folder / entry["file"]), cv2.IMREAD_COLOR)
        height, width = image.shape[:2]
        start = time.process_time()
        regions = detector.detect(image)
        elapsed += time.process_time() - start
        grown = [grow(r, policy=policy, width=width, height=height) for r in regions]
        count += len(grown)
        area += sum(r.w * r.h for r in grown) / (width * height)
        claims = [{"label": "plate", "x": r.x, "y": r.y, "w": r.w, "h": r.h} for r in grown]
        lines.append(json.dumps({"file": entry["file"], "regions": claims}))
    out.write_text("\n".join(lines) + "\n")
    n = max(1, len(lines))
    return 1000 * elapsed / n, count / n, area / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", required=True)
    ap.add_argument("--sets", nargs="+", default=["plates-openalpr", "plates-dashcam"])
    ap.add_argument(
        "--free-sets",
        nargs="*",
        default=["faces-masks"],
        help="plate-free sets: count false boxes per photo",
    )
    ap.add_argument("--threshold", type=float, default=0.3)
    ap.add_argument("--no-far", action="store_true")
    ap.add_argument("--far-scale", type=float, default=2.0)
    ap.add_argument("--max-far-pixels", type=int, default=4_000_000)
    defaults = PlatePolicy()
    ap.add_argument("--far-precision", choices=["f32", "bf16"], default=defaults.far_precision)
    ap.add_argument(
        "--far-threshold", type=float, default=defaults.far_threshold, help="far-pass box floor"
    )
    ap.add_argument("--near-precision", choices=["f32", "bf16"], default=defaults.near_precision)
    ap.add_argument("--far-rows", choices=["busy", "all"], default=defaults.far_rows)
    ap.add_argument("--read-precision", choices=["f32", "bf16"], default=defaults.read_precision)
    ap.add_argument(
        "--read-min-width",
        type=int,
        default=defaults.read_min_width,
        help="narrowest recogniser batch (PaddleOCR: 320)",
    )
    ap.add_argument(
        "--near-with-far",
        type=float,
        default=defaults.near_with_far,
        help="native-pass scale share when the far pass runs at its full scale",
    )
    ap.add_argument("--min-chars", type=int, default=3)
    ap.add_argument("--read-min-height", type=float, default=20.0)
    ap.add_argument("--min-aspect", type=float, default=1.2)
    ap.add_argument("--max-aspect", type=float, default=12.0)
    ap.add_argument("--margin", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runtime", choices=RUNTIMES, default="auto", help="text detector runtime")
    ap.add_argument(
        "--plain-graph",
        action="store_true",
        help="OpenVINO runs the detector file unchanged (no exact rewrite, db_graph.py)",
    )
    ap.add_argument("--int8", type=Path, default=None, help="int8 detector IR (.xml)")
    ap.add_argument("--int8-passes", choices=["near", "far", "both"], default="both")
    ap.add_argument("--far-pixel-threshold", type=float, default=0.3, help="with --int8")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--missed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/plate_recall"))  # noqa: S108
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    detector = build(args)
    print(f"{args.name}: passes run in {detector.precisions}", flush=True)
    for name in [*args.sets, *args.free_sets]:
        folder = SHARED / "data" / name
        regions = args.out / f"{args.name}.{name}.jsonl"
        ms, per_image, area = run_set(folder, regions, args, detector)
        if name in args.free_sets:
            line = f"false boxes/photo {per_image:.2f}  masked area {area:.4f}"
        else:
            report = score(folder, regions, missed=args.missed)
            line = summary(regions.with_suffix(".score.json"), "plate", over_digits=4)
        print(f"{args.name:16s} {name:16s} {ms:6.1f} ms/img  {line}", flush=True)
        if args.missed and name not in args.free_sets:
            print(report)


if __name__ == "__main__":
    main()
