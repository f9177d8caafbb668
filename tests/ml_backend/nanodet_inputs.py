"""The NanoDet and SSD parity inputs, made the same way by the conversion script (TensorFlow
venv) and the parity tests (runtime venv): a lossless PNG decoded by Pillow, a nearest-neighbour
resize by index arithmetic, each model's normalisation. No OpenCV, so both environments build
identical bytes."""

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


SSD_SIDE = 300


def ssd_parity_input(path: Path) -> npt.NDArray[np.float32]:
    """The SSD (Open Images) input: RGB in [-1, 1], NHWC, nearest-neighbour 300x300."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    h, w = rgb.shape[:2]
    ys = (np.arange(SSD_SIDE) * h) // SSD_SIDE
    xs = (np.arange(SSD_SIDE) * w) // SSD_SIDE
    small = rgb[ys][:, xs].astype(np.float32)
    return np.ascontiguousarray((small / 127.5 - 1.0)[None])
