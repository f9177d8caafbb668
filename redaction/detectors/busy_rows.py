"""The rows of an image that can hold text: a cheap gate for the plate detector's far pass.

A plate's characters are a run of strong vertical edges. The image is cut into cells of
`cell` pixels; a cell is busy when more than `share` of its pixels have a horizontal Sobel
response above `edge` and so does its right-hand neighbour (a lone pole fills one cell). The
band runs from the first to the last row of cells holding a busy cell, grown by `margin`
pixels on both sides for the detector's context. Only the flat bands above and below it (sky,
bonnet, empty road at night) are left out; the band keeps the full width, so there are no
window edges inside it. Measured: bench/README.md, far pass on busy rows.
"""

from __future__ import annotations

import cv2
import numpy as np

from redaction.types import BGRImage

EDGE = 60
SHARE = 0.05
CELL = 16
MARGIN = 32
"""Source pixels of context above and below the busy rows (64 at the far pass's 2x: what the
detector needed to find small plates in crops, bench/README.md, far pass on busy windows)."""


def busy_row_band(
    image: BGRImage,
    *,
    edge: int = EDGE,
    share: float = SHARE,
    cell: int = CELL,
    margin: int = MARGIN,
) -> tuple[int, int]:
    """(y0, y1): the rows from the first to the last busy cell row, grown by `margin`;
    (0, 0) when no cell is busy (no text anywhere)."""
    height, width = image.shape[:2]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    strong = np.abs(cv2.Sobel(grey, cv2.CV_16S, 1, 0, ksize=3)) > edge
    rows, cols = -(-height // cell), -(-width // cell)
    padded = np.zeros((rows * cell, cols * cell), np.float32)
    padded[:height, :width] = strong
    cells = padded.reshape(rows, cell, cols, cell).mean(axis=(1, 3))
    busy = np.minimum(cells[:, :-1], cells[:, 1:]) > share if cols > 1 else cells > share
    found = np.flatnonzero(busy.any(axis=1))
    if found.size == 0:
        return 0, 0
    y0 = max(0, int(found[0]) * cell - margin)
    y1 = min(height, (int(found[-1]) + 1) * cell + margin)
    return y0, y1
