"""Post-training int8 quantisation of the PP-OCRv4 text detector with OpenVINO NNCF (issue 20).

Runs in a bench-only virtualenv, never the project's (NNCF is not a dependency):

    python3.11 -m venv /tmp/nncf-venv
    /tmp/nncf-venv/bin/pip install nncf==3.4.0 openvino==2026.4.1 onnx \
        opencv-python-headless==4.12.0.88 numpy==2.2.6 scikit-image matplotlib
    PYTHONPATH=. /tmp/nncf-venv/bin/python bench/quantize_text_detector.py \
        --out /tmp/int8det/mixed.xml [--preset mixed] [--ignore first,head] [--subset 96] ...

The graph quantised is the one the engine runs on OpenVINO: the packaged
`ch_PP-OCRv4_det_infer.onnx` (rapidocr_onnxruntime wheel, Apache-2.0) read by OpenVINO and
rewritten exactly by `redaction/detectors/db_graph.py` (DB head as 1x1 convolutions + pixel
shuffle, logits out; SE shortcut fused). The input stays the normalised float NCHW batch
(x - 127.5) / 127.5: the engine's uint8 pre-processing is added on top at load time, as for
the fp32 model. Output: OpenVINO IR (.xml + .bin), logits map out; the .bin's sha256 printed.

Calibration never sees ../shared/data (the plate sets stay an independent test). Images:
scikit-image's sample photos and matplotlib's `grace_hopper.jpg` (as bench/quantize_models.py),
cropped and resized to 1280x720 "frames", mosaics of small copies of them, and on each frame
rendered plate-like text (`cv2.putText` of random strings such as "AB 123 CD" on light plates
with a dark border, text 4-60 px high, slightly rotated, blurred, JPEG-compressed) and a few
lines of ordinary text. Two scales, as the engine's two passes: the native frame (1280x736
after rounding to 32) and the 2x far pass; the 2x samples are 640x360 frames upscaled 2x
(the same local statistics as a 2x 720p frame, a quarter of the pixels to collect over).
Seeded: the same calibration set every run.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from redaction.detectors.db_graph import rewrite_db_graph  # noqa: E402

_SKIMAGE = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "motorcycle_left.png",
    "rocket.jpg",
    "brick.png",
    "gravel.png",
    "grass.png",
    "retina.jpg",
    "hubble_deep_field.jpg",
)
_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_PLAIN)
Image = np.ndarray[Any, Any]


def detector_file() -> Path:
    """The packaged detector (same file as redaction.detectors.ocr.packaged_model_path) found
    without importing rapidocr_onnxruntime (not installed in the bench venv): the project's
    .venv site-packages, or --onnx."""
    found = sorted(REPO.glob(".venv/lib/python*/site-packages/rapidocr_onnxruntime/models"))
    if not found:
        raise SystemExit("rapidocr_onnxruntime not found under .venv: pass --onnx")
    return found[0] / "ch_PP-OCRv4_det_infer.onnx"


def photos() -> list[Image]:
    import matplotlib
    import skimage

    data = Path(skimage.__file__).parent / "data"
    paths = [data / n for n in _SKIMAGE]
    paths.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    out = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"missing calibration photo {path}")
        out.append(np.asarray(image, np.uint8))
    return out


def plate_string(rng: np.random.Generator) -> str:
    def letters(n: int) -> str:
        return "".join(_LETTERS[int(i)] for i in rng.integers(0, len(_LETTERS), n))

    def digits(n: int) -> str:
        return "".join(str(int(i)) for i in rng.integers(0, 10, n))

    forms = (
        lambda: f"{letters(2)} {digits(3)} {letters(2)}",
        lambda: f"{letters(2)}{digits(2)} {letters(3)}",
        lambda: f"{digits(1)}{letters(3)}{digits(3)}",
        lambda: f"{letters(1)}-{digits(2)} {letters(3)}",
        lambda: f"{letters(3)} {digits(4)}",
        lambda: f"{digits(3)}-{letters(2)}-{digits(2)}",
    )
    return forms[int(rng.integers(len(forms)))]()


def render_plate(rng: np.random.Generator, text_height: float) -> Image:
    """A plate (light background, dark border and text) whose text is `text_height` px high."""
    font = _FONTS[int(rng.integers(len(_FONTS)))]
    thick = int(rng.integers(2, 5))
    text = plate_string(rng)
    (tw, th), base = cv2.getTextSize(text, font, 1.6, thick)
    pad = int(th * rng.uniform(0.25, 0.6))
    plate = np.empty((th + base + 2 * pad, tw + 2 * pad, 3), np.uint8)
    light = (
        rng.integers(200, 256, 3)
        if rng.random() < 0.7
        else np.array([rng.integers(0, 60), rng.integers(180, 230), rng.integers(200, 256)])
    )
    plate[:] = light.astype(np.uint8)
    ink = tuple(int(v) for v in rng.integers(0, 70, 3))
    cv2.rectangle(plate, (0, 0), (plate.shape[1] - 1, plate.shape[0] - 1), ink, max(1, thick - 1))
    cv2.putText(plate, text, (pad, pad + th), font, 1.6, ink, thick, cv2.LINE_AA)
    factor = text_height / th
    size = (max(4, round(plate.shape[1] * factor)), max(3, round(plate.shape[0] * factor)))
    return np.asarray(cv2.resize(plate, size, interpolation=cv2.INTER_AREA), np.uint8)


def paste(canvas: Image, tile: Image, rng: np.random.Generator, angle: float) -> None:
    h, w = tile.shape[:2]
    ch, cw = canvas.shape[:2]
    if h >= ch or w >= cw:
        return
    y, x = int(rng.integers(0, ch - h)), int(rng.integers(0, cw - w))
    if abs(angle) > 0.5:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        mask = cv2.warpAffine(np.full((h, w), 255, np.uint8), m, (w, h))
        tile = cv2.warpAffine(tile, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    else:
        mask = np.full((h, w), 255, np.uint8)
    region = canvas[y : y + h, x : x + w]
    region[mask > 0] = tile[mask > 0]


def frame(
    rng: np.random.Generator, pics: list[Image], size: tuple[int, int], max_text: float = 60.0
) -> Image:
    """A size=(w, h) frame: a photo crop or a mosaic, plate-like text and a few text lines."""
    w, h = size
    if rng.random() < 0.6:
        src = pics[int(rng.integers(len(pics)))]
        sh, sw = src.shape[:2]
        zoom = rng.uniform(0.4, 1.0)
        cw, chh = max(32, int(sw * zoom)), max(32, int(sh * zoom))
        cy, cx = int(rng.integers(0, sh - chh + 1)), int(rng.integers(0, sw - cw + 1))
        canvas = cv2.resize(src[cy : cy + chh, cx : cx + cw], (w, h), interpolation=cv2.INTER_AREA)
    else:
        canvas = np.full((h, w, 3), int(rng.integers(60, 180)), np.uint8)
        for _ in range(30):
            src = pics[int(rng.integers(len(pics)))]
            tile = cv2.resize(src, None, fx=rng.uniform(0.08, 0.4), fy=rng.uniform(0.08, 0.4))
            paste(canvas, tile, rng, 0.0)
    canvas = np.ascontiguousarray(canvas)
    # plates: many small (the buckets that broke before), some large
    for _ in range(int(rng.integers(6, 16))):
        height = float(np.exp(rng.uniform(np.log(4.0), np.log(max_text)))) * w / 1280
        plate = render_plate(rng, max(3.0, height))
        if rng.random() < 0.4:
            k = int(rng.choice([3, 5]))
            plate = cv2.GaussianBlur(plate, (k, k), 0)
        paste(canvas, plate, rng, float(rng.uniform(-8, 8)))
    for _ in range(int(rng.integers(0, 4))):  # ordinary text lines (signs, captions)
        font = _FONTS[int(rng.integers(len(_FONTS)))]
        text = " ".join(plate_string(rng).lower() for _ in range(int(rng.integers(1, 4))))
        org = (int(rng.integers(0, w // 2)), int(rng.integers(20, h)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.putText(canvas, text, org, font, rng.uniform(0.3, 1.2) * w / 1280, colour, 1)
    quality = int(rng.integers(55, 95))
    ok, jpeg = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise SystemExit("JPEG encoding failed")
    return np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), np.uint8)


def blob(image: Image, scale: float) -> Image:
    h, w = image.shape[:2]
    rh, rw = max(32, round(h * scale / 32) * 32), max(32, round(w * scale / 32) * 32)
    resized = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
    x = (resized.astype(np.float32) - 127.5) / 127.5
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def calibration(count: int, far_share: float, seed: int, max_text: float = 60.0) -> list[Image]:
    """`count` detector inputs; `far_share` of them are 2x passes over 640x360 frames."""
    rng = np.random.default_rng(seed)
    pics = photos()
    feeds = []
    for i in range(count):
        if i < round(count * far_share):
            feeds.append(blob(frame(rng, pics, (640, 360), max_text), 2.0))
        else:
            feeds.append(blob(frame(rng, pics, (1280, 720), max_text), 1.0))
    return feeds


def head_and_first(model: Any) -> tuple[list[str], list[str]]:
    """Names of the first convolution and of the rewritten head's two 1x1 convolutions."""
    convs = [op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    first = [convs[0].get_friendly_name()]
    node = model.get_results()[0].input_value(0).get_node()
    head = []
    while len(head) < 2 and node.get_type_name() != "Parameter":
        if node.get_type_name() == "Convolution":
            head.append(node.get_friendly_name())
        node = node.input_value(0).get_node()
    return first, head


def main() -> int:
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
        OverflowFix,
    )

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--onnx", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True, help="IR .xml to write")
    ap.add_argument("--preset", choices=["mixed", "performance"], default="mixed")
    ap.add_argument("--ignore", default="", help="comma list of: first, head")
    ap.add_argument("--ignore-types", default="", help="comma list of OpenVINO op types")
    ap.add_argument("--subset", type=int, default=96, help="calibration inputs")
    ap.add_argument("--far-share", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument(
        "--max-text", type=float, default=60.0, help="largest plate text, px on a 1280 frame"
    )
    ap.add_argument("--smooth-quant", type=float, default=-1.0, help="conv alpha; -1 off")
    ap.add_argument("--no-fast-bias", action="store_true", help="full BiasCorrection")
    ap.add_argument("--plain", action="store_true", help="quantise the graph not rewritten")
    ap.add_argument(
        "--quantile", action="store_true", help="activation ranges: mean 1e-4 quantiles"
    )
    args = ap.parse_args()

    core = ov.Core()
    model = core.read_model(str(args.onnx or detector_file()))
    logits = False if args.plain else rewrite_db_graph(model)
    if not args.plain and not logits:
        raise SystemExit("the exact rewrite did not apply")
    first, head = head_and_first(model)
    names = []
    if "first" in args.ignore:
        names += first
    if "head" in args.ignore:
        names += head
    types = [t for t in args.ignore_types.split(",") if t]
    print(f"ignored: {names} types {types}", flush=True)
    feeds = calibration(args.subset, args.far_share, args.seed, args.max_text)
    extra: dict[str, Any] = {}
    if args.quantile:
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        extra["activations_range_estimator_params"] = RangeEstimatorParametersSet.MEAN_QUANTILE
    advanced = AdvancedQuantizationParameters(
        overflow_fix=OverflowFix.DISABLE,  # VNNI CPUs need no 7-bit weights
        smooth_quant_alphas=AdvancedSmoothQuantParameters(convolution=args.smooth_quant),
        **extra,
    )
    quantized = nncf.quantize(
        model,
        nncf.Dataset(feeds),
        preset=nncf.QuantizationPreset(args.preset),
        target_device=nncf.TargetDevice.CPU,
        subset_size=len(feeds),
        fast_bias_correction=not args.no_fast_bias,
        ignored_scope=nncf.IgnoredScope(names=names, types=types) if names or types else None,
        advanced_parameters=advanced,
    )
    quantized.set_rt_info("logits" if logits else "probabilities", ["privacy_gateway", "output"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(args.out), compress_to_fp16=False)
    digest = hashlib.sha256(args.out.with_suffix(".bin").read_bytes()).hexdigest()
    xml_digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"{args.out} bin sha256 {digest} xml sha256 {xml_digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
