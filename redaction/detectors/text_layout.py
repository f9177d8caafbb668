"""Reading order for PP-OCR's word boxes: lines top to bottom, words left to right.

PP-OCR finds text lines (large type: one box per word) in no useful order. These functions put
the boxes in reading order, one line per text line even when it is slanted, lay the words out
in Tesseract's dict layout (numbered by `line_num`) and build the analysed text with one line
per text line, so that no pattern runs from one line into the next. Pure: boxes in, data out.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from redaction.detectors.ocr import Reading, TextBox


def words_in_reading_order(
    boxes: Sequence[TextBox], readings: Sequence[Reading]
) -> dict[str, list[Any]]:
    """Tesseract's dict layout, one entry per word, lines numbered in reading order."""
    keys = ("text", "left", "top", "width", "height", "conf", "line_num")
    out: dict[str, list[Any]] = {k: [] for k in keys}
    for line_num, line in enumerate(reading_order(boxes)):
        for i in line:
            _append_words(out, boxes[i], readings[i], line_num=line_num)
    return out


def _append_words(out: dict[str, list[Any]], box: TextBox, reading: Reading, *,
                  line_num: int) -> None:  # fmt: skip
    x, y, w, h = box.bbox()
    text = reading.text
    per_char = w / max(1, len(text))
    pos = 0
    for word in text.split(" "):
        if word:
            out["text"].append(word)
            out["left"].append(round(x + pos * per_char))
            out["top"].append(y)
            out["width"].append(max(1, round(len(word) * per_char)))
            out["height"].append(h)
            out["conf"].append(100 * reading.score)
            out["line_num"].append(line_num)
        pos += len(word) + 1


def lines_of_words(ocr_result: dict[str, list[Any]]) -> list[list[str]]:
    """The dict's words grouped by consecutive `line_num` (one line when there is none)."""
    numbers = ocr_result.get("line_num") or [0] * len(ocr_result["text"])
    lines: list[list[str]] = []
    previous = None
    for word, number in zip(ocr_result["text"], numbers, strict=True):
        if not lines or number != previous:
            lines.append([])
        lines[-1].append(word)
        previous = number
    return lines


def text_in_lines(ocr_result: dict[str, list[Any]], separator: str = " ") -> str:
    """Words joined by `separator` within a line, lines by a newline (also one character,
    so offsets stay those Presidio's default text would have)."""
    if not ocr_result:
        return ""
    return "\n".join(separator.join(line) for line in lines_of_words(ocr_result))


# A box joins a line when, across the line's direction, it overlaps the line's first (widest)
# box by this share of the smaller of the two; a line is cut where the gap between
# neighbouring words exceeds this many text heights.
_LINE_OVERLAP = 0.6
_LINE_GAP_HEIGHTS = 2.0
# Below this width/height ratio a box's long side may not follow the text: its angle is unknown.
_RELIABLE_ANGLE_RATIO = 1.5
# Words of one line share their slant, up to the error of fitting a box to a few letters.
_SAME_SLANT = np.radians(8.0)


def reading_order(boxes: Sequence[TextBox]) -> list[list[int]]:
    """Indices of `boxes` as lines, top to bottom, each left to right along its own slant.

    Lines grow from their widest box, whose angle is the most reliable, and take the boxes
    inside its band (the strip it spans across the text direction), the nearest line's when
    bands cross; comparing with the first box, not with any member, keeps a slanted line
    from chaining into its neighbours.
    """
    if not boxes:
        return []
    quads = np.stack([b.quad for b in boxes]).astype(np.float64)
    slants = _text_angles(quads)
    angles = np.nan_to_num(slants)  # boxes too short to tell: read horizontally
    widths = np.linalg.norm(quads[:, 1] - quads[:, 0], axis=1)
    across = _projected(quads, np.stack([-np.sin(angles), np.cos(angles)], axis=1))
    along = _projected(quads, np.stack([np.cos(angles), np.sin(angles)], axis=1))
    lines: list[list[int]] = []
    for i in np.argsort(-widths, kind="stable"):
        seed = _best_line(int(i), lines, across, along, slants)
        if seed is None:
            lines.append([int(i)])
        else:
            lines[seed].append(int(i))
    ordered = [part for line in lines for part in _split_at_gaps(line, along, across)]
    return sorted(ordered, key=lambda line: float(quads[line, :, 1].mean()))


def _text_angles(quads: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each box's slant (radians, from its top edge); NaN where the box is too short to tell."""
    top = quads[:, 1] - quads[:, 0]
    widths = np.linalg.norm(top, axis=1)
    heights = np.linalg.norm(quads[:, 3] - quads[:, 0], axis=1)
    angles = np.arctan2(top[:, 1], top[:, 0])
    reliable = (widths >= _RELIABLE_ANGLE_RATIO * heights) & (np.abs(angles) <= np.pi / 4)
    return np.where(reliable, angles, np.nan)


def _projected(
    quads: npt.NDArray[np.float64], axes: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """[r, j] = (low, high) extent of box j on box r's axis."""
    points = np.einsum("jkd,rd->rjk", quads, axes)
    return np.stack([points.min(axis=2), points.max(axis=2)], axis=2)


def _best_line(box: int, lines: list[list[int]], across: npt.NDArray[np.float64],
               along: npt.NDArray[np.float64], slants: npt.NDArray[np.float64],
               ) -> int | None:  # fmt: skip
    """Of the lines of like slant whose first box's band `box` overlaps enough, the one with a
    member nearest along the line (a band reaches across the image: another may cross it)."""
    best, best_gap = None, np.inf
    for n, line in enumerate(lines):
        if abs(slants[box] - slants[line[0]]) > _SAME_SLANT:  # False when either is NaN
            continue
        (b_lo, b_hi), (s_lo, s_hi) = across[line[0], box], across[line[0], line[0]]
        share = (min(b_hi, s_hi) - max(b_lo, s_lo)) / min(b_hi - b_lo, s_hi - s_lo)
        if share < _LINE_OVERLAP:
            continue
        lo, hi = along[line[0], box]
        gap = min(max(along[line[0], j, 0] - hi, lo - along[line[0], j, 1]) for j in line)
        if gap < best_gap:
            best, best_gap = n, gap
    return best


def _split_at_gaps(line: list[int], along: npt.NDArray[np.float64],
                   across: npt.NDArray[np.float64]) -> list[list[int]]:  # fmt: skip
    """The line's boxes in order along its first box's direction, cut at wide gaps."""
    seed = line[0]
    ordered = sorted(line, key=lambda j: float(along[seed, j].mean()))
    height = float(across[seed, seed, 1] - across[seed, seed, 0])
    parts = [[ordered[0]]]
    for previous, j in itertools.pairwise(ordered):
        if along[seed, j, 0] - along[seed, previous, 1] > _LINE_GAP_HEIGHTS * height:
            parts.append([])
        parts[-1].append(j)
    return parts
