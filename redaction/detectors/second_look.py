"""A second, closer look at CenterFace's candidates just under the threshold (opt-in).

Small faces that are half hidden (only a mask showing, behind a hand or another head) score
0.03-0.08 on CenterFace's heatmap at full resolution, among a few dozen non-faces per photo.
Looked at again at 2x they often score 0.15-0.6 where the non-faces do not (development part
of faces-masks, bench/README.md, faces behind objects). Scanning the whole photo at 2x costs
about four passes; here only crops around the candidates are upscaled, packed into one mosaic
and run through the same network once. A face found in the mosaic counts only when its centre
lies on the candidate that asked for the look, so a face in a crop's context (already found,
or not a candidate) is not added twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from redaction.detectors._onnx import FloatArray
from redaction.detectors.centerface import CenterFaceModel
from redaction.detectors.tiling import merge_boxes, no_boxes, resize_by
from redaction.types import BGRImage

_PRE_NMS = 8
"""Cells kept before suppression, per candidate looked at."""
_GAP = 8
"""Black pixels between tiles of the mosaic (CenterFace's own padding is black too)."""


@dataclass(frozen=True, slots=True)
class SecondLook:
    """`low`: heatmap score from which a candidate is looked at again (the primary threshold
    is the upper end). `threshold`: score the closer look must reach. `upscale`: crop
    magnification. `max_side`: candidates with a longer short side are not looked at (2x
    finds nothing more on large faces). `max_candidates`: the highest-scoring ones only.
    `context`: crop side as a multiple of the candidate's longer side (at least `min_crop`)."""

    low: float = 0.03
    threshold: float = 0.2
    upscale: float = 2.0
    max_side: int = 40
    max_candidates: int = 32
    context: float = 3.0
    min_crop: int = 24
    nms_iou: float = 0.3

    def __post_init__(self) -> None:
        if not 0 < self.low < 1 or not 0 < self.threshold < 1:
            raise ValueError("low and threshold must be in (0, 1)")
        if self.upscale < 1 or self.max_candidates < 1 or self.context < 1:
            raise ValueError("upscale and context must be >= 1, max_candidates >= 1")


def candidates(below: FloatArray, kept: FloatArray, look: SecondLook) -> FloatArray:
    """The sub-threshold boxes worth a second look: merged, not centred on a kept box, small,
    highest score first, at most `max_candidates`."""
    below = below[below[:, 4] >= look.low]
    if not len(below):
        return no_boxes()
    # the best cells only: a few thousand sub-threshold cells would make the NMS the cost
    below = below[np.argsort(-below[:, 4], kind="stable")[: _PRE_NMS * look.max_candidates]]
    merged = merge_boxes(below, iou=look.nms_iou, grow=False)
    short = np.minimum(merged[:, 2] - merged[:, 0], merged[:, 3] - merged[:, 1])
    merged = merged[short <= look.max_side]
    if len(kept) and len(merged):
        cx = ((merged[:, 0] + merged[:, 2]) / 2)[:, None]
        cy = ((merged[:, 1] + merged[:, 3]) / 2)[:, None]
        on_kept = (cx >= kept[None, :, 0]) & (cx <= kept[None, :, 2])
        on_kept &= (cy >= kept[None, :, 1]) & (cy <= kept[None, :, 3])
        merged = merged[~on_kept.any(axis=1)]
    return np.asarray(merged[: look.max_candidates], np.float32)  # merge_boxes sorts by score


def _crop_window(box: FloatArray, width: int, height: int, look: SecondLook) -> tuple[int, ...]:
    side = max(look.min_crop, round(look.context * max(box[2] - box[0], box[3] - box[1])))
    side_x, side_y = min(side, width), min(side, height)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = int(np.clip(round(cx - side_x / 2), 0, width - side_x))
    y0 = int(np.clip(round(cy - side_y / 2), 0, height - side_y))
    return x0, y0, x0 + side_x, y0 + side_y


def look_again(
    model: CenterFaceModel, image: BGRImage, cands: FloatArray, look: SecondLook
) -> FloatArray:
    """Boxes (x0, y0, x1, y1, score) in image pixels for the candidates the closer look
    confirms; each confirmed box is the one found at `upscale`, centred on its candidate."""
    if not len(cands):
        return no_boxes()
    height, width = image.shape[:2]
    windows = [_crop_window(b, width, height, look) for b in cands]
    tiles = [resize_by(image[y0:y1, x0:x1], look.upscale) for x0, y0, x1, y1 in windows]
    # shelf packing, rows about as wide as the square root of the total area
    row_width = max(
        max(t.shape[1] for t in tiles),
        int(np.sqrt(sum((t.shape[0] + _GAP) * (t.shape[1] + _GAP) for t in tiles))),
    )
    places: list[tuple[int, int]] = []
    x = y = row_h = 0
    for t in tiles:
        if x and x + t.shape[1] > row_width:
            x, y, row_h = 0, y + row_h + _GAP, 0
        places.append((x, y))
        x += t.shape[1] + _GAP
        row_h = max(row_h, t.shape[0])
    mosaic = np.zeros((y + row_h, row_width, 3), np.uint8)
    for (px, py), t in zip(places, tiles, strict=True):
        mosaic[py : py + t.shape[0], px : px + t.shape[1]] = t
    found = model.boxes(mosaic, scale=1.0, threshold=look.threshold)
    if not len(found):
        return no_boxes()
    cx, cy = (found[:, 0] + found[:, 2]) / 2, (found[:, 1] + found[:, 3]) / 2
    out = []
    for (px, py), t, (x0, y0, _, _), cand in zip(places, tiles, windows, cands, strict=True):
        in_tile = (cx >= px) & (cx < px + t.shape[1]) & (cy >= py) & (cy < py + t.shape[0])
        if not in_tile.any():
            continue
        boxes = found[in_tile].copy()
        boxes[:, 0:4:2] = (boxes[:, 0:4:2] - px) / look.upscale + x0
        boxes[:, 1:4:2] = (boxes[:, 1:4:2] - py) / look.upscale + y0
        bx, by = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        on_cand = (bx >= cand[0]) & (bx <= cand[2]) & (by >= cand[1]) & (by <= cand[3])
        out.append(boxes[on_cand])
    if not out:
        return no_boxes()
    confirmed = np.concatenate([no_boxes(), *out])
    confirmed[:, 0:4:2] = np.clip(confirmed[:, 0:4:2], 0, width)
    confirmed[:, 1:4:2] = np.clip(confirmed[:, 1:4:2], 0, height)
    return merge_boxes(confirmed, iou=look.nms_iou, grow=False)
