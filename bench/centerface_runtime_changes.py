"""Why faces changed between two CenterFace runtimes (after bench/centerface_runtime_recall.py).

    .venv/bin/python -m bench.centerface_runtime_changes --variant ov-int8-static-f32in

For every faces-masks face that the recall run lists as lost or gained against the base
variant, the peak heatmap score inside the face's labelled box (stride-4 cells it covers) on
both runtimes: a face whose peak sits near the detector's threshold (0.08) on both is
quantisation jitter, not a runtime fault. Also the mean distance of each int8 runtime's
heatmap from the fp32 network on onnxruntime (the first `--photos` photos): whether one int8
runtime is systematically further from the original. Prints a markdown section.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.centerface_runtimes import load_models, ort_raw, padded_image, padded_images
from bench.redaction import REPO
from bench.scoring import SHARED
from redaction.detectors.centerface import CenterFaceModel
from redaction.types import BGRImage

SET = "faces-masks"


def heat(model: Any, name: str, image: BGRImage) -> np.ndarray:
    return (ort_raw(model, image) if name.startswith("ort") else model.raw(image))[0][0, 0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", required=True)
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument(
        "--recall",
        type=Path,
        default=REPO / "bench" / "results" / "centerface-runtime-recall-2026-12-03.json",
    )
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    recall = json.loads(args.recall.read_text())
    base = recall["base"]
    models = load_models([base, args.variant])
    gt = {
        e["file"]: e for e in json.loads((SHARED / "data" / SET / "gt.json").read_text())["images"]
    }
    lines = [
        f"### Faces lost or gained on `{args.variant}` against `{base}` ({SET})",
        "",
        f"| change | bucket | face w x h | coverage {base} -> variant | peak heat {base} | "
        "peak heat variant |",
        "|---|---|---|---|---|---|",
    ]
    changes = recall["changes_against_base"][SET][args.variant]
    for kind in ("lost", "gained"):
        for face in changes[kind]:
            box = gt[face["file"]]["boxes"][face["box"]]
            image = padded_image(SHARED / "data" / SET / face["file"])
            rows = slice(int(box["y"] // 4), int((box["y"] + box["h"]) // 4) + 1)
            cols = slice(int(box["x"] // 4), int((box["x"] + box["w"]) // 4) + 1)
            peaks = [
                float(heat(models[n], n, image)[rows, cols].max()) for n in (base, args.variant)
            ]
            lines.append(
                f"| {kind} | {face['bucket']} | {box['w']:.0f} x {box['h']:.0f} | "
                f"{face['base']} -> {face['variant']} | {peaks[0]:.3f} | {peaks[1]:.3f} |"
            )
    fp32 = CenterFaceModel(threads=1)
    distance = dict.fromkeys((base, args.variant), 0.0)
    images = padded_images(SHARED / "data" / SET, args.photos)
    for image in images:
        reference = ort_raw(fp32, image)[0][0, 0]
        for name in distance:
            distance[name] += float(np.abs(heat(models[name], name, image) - reference).mean())
    lines += [
        "",
        f"Mean |heatmap - fp32 on onnxruntime| over the first {len(images)} photos: "
        + ", ".join(f"`{n}` {v / len(images):.5f}" for n, v in distance.items())
        + ".",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
