"""Comparing COCO files ignoring ids, file names and order, within a float tolerance."""

from __future__ import annotations

import math
from typing import Any

REL = 1e-9  # same float arithmetic in a different order; neither side rounds


def coco_shapes(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Annotations by category name (ids dropped): name, bbox, area, flat segmentation,
    keypoints; sorted."""
    names = {c["id"]: c["name"] for c in doc["categories"]}
    shapes = []
    for a in doc["annotations"]:
        seg = [v for part in a.get("segmentation") or [] for v in part]
        shapes.append((names[a["category_id"]], a["bbox"], a.get("area"), seg, a.get("keypoints")))
    return sorted(shapes, key=lambda s: (s[0], s[1]))


def close(ours: Any, theirs: Any, *, abs_tol: float = 0.0) -> bool:
    if isinstance(ours, list | tuple):
        return len(ours) == len(theirs) and all(
            close(a, b, abs_tol=abs_tol) for a, b in zip(ours, theirs, strict=True)
        )
    if isinstance(ours, int | float) and isinstance(theirs, int | float):
        return math.isclose(ours, theirs, rel_tol=REL, abs_tol=max(abs_tol, 1e-12))
    return bool(ours == theirs)
