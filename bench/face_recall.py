"""Quick face-recall measurement: run a detector configuration over sample sets, write the
regions it would mask (grown by the policy margin, ellipses as polygons) and score them with
the shared `eval_redaction.py --regions`.

    .venv/bin/python -m bench.face_recall --name default [--flip] [--upscale 2] ...

Prints one line per set with recall by size bucket, over-redaction and detector CPU ms/image
(process time, so that other load on the machine inflates it less than wall time) on the
configured number of onnxruntime threads. Needs ../shared/data (not part of the project).

A design tool from the first sessions, not the product's figures: it builds CenterFace in fp32
(the registry runs the int8 build) and grows boxes by a flat `--margin` (the engine grows them
with `redaction.engine.grow`). The product's face recall comes from `bench/redaction.py` (the
real engine end to end; its output scored on each part of `bench/face_split.json` for the
held-out figures).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.scoring import SHARED, score, summary
from redaction.detectors.faces import FACE_SCALES, CenterFaceDetector
from redaction.detectors.retinaface import RetinaFaceDetector
from redaction.detectors.tiling import ScalePolicy, merge_boxes
from redaction.types import BGRImage, Label, Region


def ellipse_polygon(region: Region, points: int = 48) -> list[list[float]]:
    """The ellipse inscribed in the region's box, as the operator would mask it."""
    cx, cy = region.x + region.w / 2, region.y + region.h / 2
    angles = np.linspace(0, 2 * math.pi, points, endpoint=False)
    return [
        [round(cx + region.w / 2 * math.cos(a), 2), round(cy + region.h / 2 * math.sin(a), 2)]
        for a in angles
    ]


def region_claim(region: Region, *, ellipse: bool) -> dict[str, object]:
    if ellipse:
        return {"label": "face", "polygon": ellipse_polygon(region)}
    return {"label": "face", "x": region.x, "y": region.y, "w": region.w, "h": region.h}


def build(
    args: argparse.Namespace,
) -> tuple[CenterFaceDetector | None, RetinaFaceDetector | None]:
    scales = ScalePolicy(
        upscale=args.upscale,
        upscale_below=args.upscale_below,
        native_pass=not args.no_native,
        tile=args.tile,
    )
    primary = CenterFaceDetector(
        threshold=args.threshold,
        scales=scales,
        flip=args.flip,
        chin=args.chin,
        threads=args.threads,
        nms_iou=args.nms,
    )
    second = None
    if args.retina is not None:
        second = RetinaFaceDetector(threshold=args.retina, scales=scales, threads=args.threads)
    return (None if args.only_retina else primary), second


def detect(
    image: BGRImage, primary: CenterFaceDetector | None, second: RetinaFaceDetector | None
) -> list[Region]:
    regions = primary.detect(image) if primary is not None else []
    if second is None:
        return regions
    both = regions + second.detect(image)
    rows = np.asarray(
        [[r.x, r.y, r.x + r.w, r.y + r.h, r.score] for r in both], np.float32
    ).reshape(-1, 5)
    merged = merge_boxes(rows, iou=0.3, grow=True)
    return [
        Region(Label.FACE, int(a), int(b), int(c - a), int(d - b), float(s), "union")
        for a, b, c, d, s in merged.tolist()
    ]


def run_set(
    folder: Path,
    out: Path,
    args: argparse.Namespace,
    detectors: tuple[CenterFaceDetector | None, RetinaFaceDetector | None],
) -> float:
    gt = json.loads((folder / "gt.json").read_text())
    elapsed = 0.0
    lines = []
    for entry in gt["images"][: args.limit]:
        image = np.asarray(cv2.imread(str(folder / entry["file"]), cv2.IMREAD_COLOR), np.uint8)
        height, width = image.shape[:2]
        start = time.process_time()
        regions = detect(image, *detectors)
        elapsed += time.process_time() - start
        grown = [r.expanded(args.margin, width=width, height=height) for r in regions]
        claims = [region_claim(r, ellipse=not args.rect) for r in grown]
        lines.append(json.dumps({"file": entry["file"], "regions": claims}))
    out.write_text("\n".join(lines) + "\n")
    return 1000 * elapsed / max(1, len(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", required=True)
    ap.add_argument("--sets", nargs="+", default=["faces-masks", "faces-dlib"])
    ap.add_argument("--threshold", type=float, default=0.08)
    ap.add_argument("--upscale", type=float, default=FACE_SCALES.upscale)
    ap.add_argument("--upscale-below", type=int, default=1000)
    ap.add_argument("--no-native", action="store_true")
    ap.add_argument("--nms", type=float, default=0.3)
    ap.add_argument("--chin", type=float, default=0.1)
    ap.add_argument("--flip", action="store_true")
    ap.add_argument("--tile", type=int, default=FACE_SCALES.tile)
    ap.add_argument(
        "--retina", type=float, default=None, help="union with RetinaFace at this threshold"
    )
    ap.add_argument("--only-retina", action="store_true", help="score RetinaFace alone")
    ap.add_argument("--margin", type=float, default=0.3)
    ap.add_argument("--rect", action="store_true", help="mask rectangles instead of ellipses")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--missed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "face_recall")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    detectors = build(args)
    for name in args.sets:
        folder = SHARED / "data" / name
        regions = args.out / f"{args.name}.{name}.jsonl"
        ms = run_set(folder, regions, args, detectors)
        report = score(folder, regions, missed=args.missed)
        line = summary(regions.with_suffix(".score.json"), "face")
        print(f"{args.name:24s} {name:12s} {ms:6.1f} ms/img  {line}", flush=True)
        if args.missed:
            print(report)


if __name__ == "__main__":
    main()
