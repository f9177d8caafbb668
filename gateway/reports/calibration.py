"""Reviewer recall: a calibration batch with faces deliberately left visible, and the share of
them reviewers find.

The batch is made only from the bundled public photos (`gateway/demo_photos`, CC0 1.0, with
their hand-labelled boxes in `gt.json`), never from user data. Every labelled face is masked
the way the engine masks a face (grown box, ellipse, the policy's operator) except the ones a
seeded draw leaves visible: those are the planted leaks. Some items get no planted face, so a
reviewer cannot learn that every calibration task hides one. The manifest (seed, photo digest,
which faces are visible, which are masked) is what the review loop records with each item.

Limits: the photos also hold faces nobody labelled; they stay visible in every item, and a
reviewer who boxes one is not credited with a planted face (a drawn box counts only when it
overlaps a planted face with IoU >= 0.3, one-to-one).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gateway.reports.agreement import Box, match_boxes
from gateway.reports.leak_estimate import RecallCount
from gateway.shipped import shipped_path
from redaction import operators
from redaction.engine import grow
from redaction.io import encode_image
from redaction.policy import RedactionPolicy
from redaction.types import BGRImage, Label, Region

PHOTOS = shipped_path("demo_photos")
MATCH_IOU = 0.3
MAX_VISIBLE = 2


@dataclass(frozen=True, slots=True)
class CalibrationItem:
    photo: str
    photo_sha256: str
    image: bytes  # JPEG, every labelled face masked except `visible`
    width: int
    height: int
    regions: tuple[tuple[int, int, int, int], ...]  # what was masked (grown as the engine grows)
    visible: tuple[tuple[int, int, int, int], ...]  # planted: left unredacted on purpose
    masked: tuple[tuple[int, int, int, int], ...]

    def manifest(self) -> dict[str, Any]:
        """What the review loop records with the item (integers and strings only)."""
        return {
            "photo": self.photo,
            "photo_sha256": self.photo_sha256,
            "visible": [list(b) for b in self.visible],
            "masked": [list(b) for b in self.masked],
        }


@dataclass(frozen=True, slots=True)
class CalibrationBatch:
    seed: int
    items: tuple[CalibrationItem, ...]

    @property
    def planted(self) -> int:
        return sum(len(i.visible) for i in self.items)


def labelled_faces(photos: Path = PHOTOS) -> dict[str, list[tuple[int, int, int, int]]]:
    """Photo file -> its labelled face boxes (pixels, rounded outwards), from gt.json."""
    truth = json.loads((photos / "gt.json").read_text(encoding="utf-8"))
    faces: dict[str, list[tuple[int, int, int, int]]] = {}
    for image in truth["images"]:
        boxes = [_pixels(b) for b in image["boxes"] if b["label"] == "face"]
        if boxes:
            faces[Path(image["file"]).name] = boxes
    return faces


def _pixels(box: dict[str, float]) -> tuple[int, int, int, int]:
    x, y = int(box["x"]), int(box["y"])
    return x, y, int(np.ceil(box["x"] + box["w"])) - x, int(np.ceil(box["y"] + box["h"])) - y


def build_batch(
    *, seed: int, photos: Path = PHOTOS, policy: RedactionPolicy | None = None
) -> CalibrationBatch:
    """One item per photo with labelled faces: 0 to MAX_VISIBLE of its faces left visible,
    drawn with `random.Random(seed)` (the same seed gives the same batch)."""
    policy = policy or RedactionPolicy()
    rng = random.Random(seed)  # noqa: S311  (a reproducible draw, not a secret)
    items = []
    for name, boxes in sorted(labelled_faces(photos).items()):
        data = (photos / name).read_bytes()
        pixels = _decode(data)
        grown = _grown(pixels, boxes, policy)
        # a face a neighbour's mask would touch cannot be planted: it would not stay visible
        free = [i for i, b in enumerate(boxes) if not any(
            _overlap(b, g) for j, g in enumerate(grown) if j != i)]  # fmt: skip
        chosen = set(rng.sample(free, rng.randint(0, min(MAX_VISIBLE, len(free)))))
        masked = [i for i in range(len(boxes)) if i not in chosen]
        shown = operators.apply(pixels, [grown[i] for i in masked], operator=policy.operator)
        items.append(
            CalibrationItem(
                photo=name,
                photo_sha256=hashlib.sha256(data).hexdigest(),
                image=encode_image(shown, quality=95),
                width=int(pixels.shape[1]),
                height=int(pixels.shape[0]),
                regions=tuple((grown[i].x, grown[i].y, grown[i].w, grown[i].h) for i in masked),
                visible=tuple(boxes[i] for i in sorted(chosen)),
                masked=tuple(boxes[i] for i in masked),
            )
        )
    return CalibrationBatch(seed=seed, items=tuple(items))


def _decode(data: bytes) -> BGRImage:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError("a bundled calibration photo does not decode")
    return np.ascontiguousarray(pixels, dtype=np.uint8)


def _grown(
    pixels: BGRImage, boxes: Sequence[tuple[int, int, int, int]], policy: RedactionPolicy
) -> list[Region]:
    """The regions the engine would mask for these faces (its margins), in order."""
    height, width = pixels.shape[:2]
    return [
        grow(Region(Label.FACE, *b, 1.0, "calibration"), policy=policy, width=width, height=height)
        for b in boxes
    ]


def _overlap(box: tuple[int, int, int, int], region: Region) -> bool:
    x, y, w, h = box
    return (
        x < region.x + region.w
        and region.x < x + w
        and y < region.y + region.h
        and (region.y < y + h)
    )


def planted_found(
    visible: Sequence[Sequence[int]], drawn: Sequence[tuple[float, float, float, float]]
) -> RecallCount:
    """How many planted faces the reviewer's face boxes (pixels) hit, one-to-one."""
    planted = [Box(float(x), float(y), float(w), float(h), "face") for x, y, w, h in visible]
    boxes = [Box(x, y, w, h, "face") for x, y, w, h in drawn]
    return RecallCount(
        planted=len(planted), found=match_boxes(planted, boxes, threshold=MATCH_IOU).matched
    )
