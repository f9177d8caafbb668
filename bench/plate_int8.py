"""The int8 PP-OCRv4 text detector (`bench/quantize_text_detector.py`, an OpenVINO IR of the
exactly rewritten graph, logits out) in the plate stage, per pass, and its CPU time per pass.

    .venv/bin/python bench/plate_int8.py --models fp32,/tmp/int8det/mixed.xml [--frames 12]

times one native (scale 1) and one far (scale 2) `TextDetectorModel.detect` per model on 720p
dashcam frames (every k-th frame), all models and passes interleaved (`bench/timing.py`), one
thread, and counts the boxes each finds. `bench/plate_recall.py --int8 PATH --int8-passes far`
scores recall with the int8 model on one pass or both (`PlateDetector`'s `far_text_detector`).
Its committed results predate two plate changes: boxes nested in a rejected box are now read,
and the near pass shrinks under a full 2x far pass (`--near-with-far 1` restores it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.redaction import machine_info  # noqa: E402
from bench.scoring import SHARED  # noqa: E402
from bench.timing import interleaved_cpu  # noqa: E402
from redaction.detectors.ocr import _DET_NORM, TextDetectorModel, model_info  # noqa: E402
from redaction.detectors.runtime import load_runner  # noqa: E402


def _ir_logits(model: Any) -> bool:
    """`rewrite` for an IR saved by quantize_text_detector.py: already rewritten; True when
    it returns logits (recorded in its rt_info)."""
    info = model.get_rt_info()
    return bool(info["privacy_gateway"]["output"].astype(str) == "logits")


def int8_detector(
    path: Path, *, threads: int = 1, pixel_threshold: float = 0.3, box_threshold: float = 0.3
) -> TextDetectorModel:
    """A TextDetectorModel over the int8 IR `path` on OpenVINO (uint8 input, as fp32)."""
    det = TextDetectorModel(
        threads=threads, pixel_threshold=pixel_threshold, box_threshold=box_threshold
    )
    det._runner = load_runner(
        path, threads=threads, runtime="openvino", normalise=_DET_NORM, rewrite=_ir_logits
    )
    det.info = model_info(path.with_suffix(".bin"), name="PP-OCRv4 text detector int8")
    return det


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="fp32", help="comma list: fp32 or IR .xml paths")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--set", default="plates-dashcam")
    ap.add_argument("--out", type=Path, default=None, help="JSON to write")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    folder = SHARED / "data" / args.set
    entries = json.loads((folder / "gt.json").read_text())["images"]
    entries = entries[:: max(1, len(entries) // args.frames)][: args.frames]
    images = [cv2.imread(str(folder / e["file"]), cv2.IMREAD_COLOR) for e in entries]
    models: dict[str, TextDetectorModel] = {}
    for spec in args.models.split(","):
        models[spec] = TextDetectorModel(threads=1) if spec == "fp32" else int8_detector(Path(spec))
    names = [f"{m}@{s}" for m in models for s in ("native", "2x")]
    boxes = dict.fromkeys(names, 0)

    def call(name: str, index: int) -> None:
        spec, scale = name.rsplit("@", 1)
        found = models[spec].detect(images[index], scale=1.0 if scale == "native" else 2.0)
        boxes[name] += len(found)

    start_load = [round(x, 2) for x in os.getloadavg()]
    cpu = interleaved_cpu(len(images), names, call)
    rows = {n: {"cpu_ms": round(1000 * cpu[n] / len(images), 1), "boxes": boxes[n]} for n in names}
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "set": args.set,
        "frames": len(images),
        "size": list(images[0].shape[:2]),
        "loadavg": [start_load, [round(x, 2) for x in os.getloadavg()]],
        "passes": rows,
    }
    for n, row in rows.items():
        print(f"{n:60s} {row['cpu_ms']:8.1f} ms  boxes {row['boxes']}")
    print("load", report["loadavg"])
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
