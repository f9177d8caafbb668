"""The NanoDet parity input, made the same way by the conversion script (TensorFlow venv) and the
parity test (runtime venv): a lossless PNG decoded by Pillow, a nearest-neighbour resize by index
arithmetic, NanoDet's BGR mean/std. No OpenCV, so both environments build identical bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

SIDE = 416
MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)


def parity_input(path: Path) -> npt.NDArray[np.float32]:
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    h, w = rgb.shape[:2]
    ys = (np.arange(SIDE) * h) // SIDE
    xs = (np.arange(SIDE) * w) // SIDE
    bgr = rgb[ys][:, xs][:, :, ::-1].astype(np.float32)
    norm = (bgr - MEAN_BGR) / STD_BGR
    return np.ascontiguousarray(norm.transpose(2, 0, 1)[None])
