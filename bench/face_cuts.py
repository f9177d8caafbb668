"""Faces cut by the image border, made from the face split's photos: `faces-cut`.

The sample sets hold few faces cut by an edge (74 of 1556 on the development part touch one),
too few to tell remedies apart. This builds more, by geometry only: for each photo of a part,
up to `PER_PHOTO` of its faces (short side >= `MIN_SIDE` px, spread over the sizes) each give
one crop of the photo whose edge runs through that face, on the side nearest to the face, so
that `VISIBLE` (alternately 0.5 and 0.7) of the face's box stays in the picture. The crop's
ground truth is every face box clipped to the crop, kept when at least `KEEP` of its area is
still inside. Crops are written as PNG (no second JPEG pass) under `bench/out/cuts/`, with
`faces-cut/gt-<part>.json`; a crop of a held-out photo is held out too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2

CUT_SET = "faces-cut"
PER_PHOTO = 3
MIN_SIDE = 8
VISIBLE = (0.5, 0.7)
KEEP = 0.4


def _chosen(boxes: list[dict[str, Any]]) -> list[int]:
    """Indices of up to PER_PHOTO faces of at least MIN_SIDE px, spread from small to large."""
    big = sorted(
        (
            i
            for i, b in enumerate(boxes)
            if b["label"] == "face" and min(b["w"], b["h"]) >= MIN_SIDE
        ),
        key=lambda i: (min(boxes[i]["w"], boxes[i]["h"]), i),
    )
    if len(big) <= PER_PHOTO:
        return big
    step = (len(big) - 1) / (PER_PHOTO - 1)
    return [big[round(k * step)] for k in range(PER_PHOTO)]


def crop_window(box: dict[str, float], width: int, height: int, visible: float) -> tuple[int, ...]:
    """(x0, y0, x1, y1) of the crop whose nearest edge to the face leaves `visible` of it."""
    cx, cy = box["x"] + box["w"] / 2, box["y"] + box["h"] / 2
    gaps = {"left": cx, "top": cy, "right": width - cx, "bottom": height - cy}
    side = min(gaps, key=lambda k: gaps[k])
    x0, y0, x1, y1 = 0, 0, width, height
    if side == "left":
        x0 = round(box["x"] + (1 - visible) * box["w"])
    elif side == "right":
        x1 = round(box["x"] + visible * box["w"])
    elif side == "top":
        y0 = round(box["y"] + (1 - visible) * box["h"])
    else:
        y1 = round(box["y"] + visible * box["h"])
    return x0, y0, x1, y1


def clipped_boxes(boxes: list[dict[str, Any]], window: tuple[int, ...]) -> list[dict[str, Any]]:
    x0, y0, x1, y1 = window
    out = []
    for b in boxes:
        left, top = max(b["x"], x0), max(b["y"], y0)
        right, bottom = min(b["x"] + b["w"], x1), min(b["y"] + b["h"], y1)
        if right <= left or bottom <= top:
            continue
        if (right - left) * (bottom - top) < KEEP * b["w"] * b["h"]:
            continue
        out.append({"label": b["label"], "x": left - x0, "y": top - y0, "w": right - left,
                    "h": bottom - top})  # fmt: skip
    return out


def build_cuts(data: Path, split: dict[str, dict[str, list[str]]], out: Path) -> None:
    """Write `out/faces-cut/images/*.png` and `gt-<part>.json` for faces-masks' split."""
    gt = json.loads((data / "faces-masks" / "gt.json").read_text())
    by_file = {e["file"]: e for e in gt["images"]}
    target = out / CUT_SET
    (target / "images").mkdir(parents=True, exist_ok=True)
    for part, files in split["faces-masks"].items():
        entries = []
        for file in sorted(files):
            entry = by_file[file]
            image = None
            for n, i in enumerate(_chosen(entry["boxes"])):
                window = crop_window(entry["boxes"][i], entry["width"], entry["height"],
                                     VISIBLE[n % len(VISIBLE)])  # fmt: skip
                name = f"images/{Path(file).stem}-{n}.png"
                if not (target / name).exists():
                    image = (
                        image if image is not None else cv2.imread(str(data / "faces-masks" / file))
                    )
                    x0, y0, x1, y1 = window
                    cv2.imwrite(str(target / name), image[y0:y1, x0:x1])
                x0, y0, x1, y1 = window
                entries.append({"file": name, "width": x1 - x0, "height": y1 - y0,
                                "boxes": clipped_boxes(entry["boxes"], window)})  # fmt: skip
        (target / f"gt-{part}.json").write_text(
            json.dumps({"source": "crops of faces-masks (bench/face_cuts.py)", "images": entries})
        )
