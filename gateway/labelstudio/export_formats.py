"""COCO, Pascal VOC and YOLO files from shapes in pixels (pure: shapes in, bytes out).

Numbers are written as Python writes floats (shortest repr, full precision), never rounded:
what Label Studio stored is what the files say. Where a format has no place for a kind of
region, the region is left out and counted:

| region    | COCO                                   | VOC  | YOLO                            |
|-----------|----------------------------------------|------|---------------------------------|
| rectangle | bbox                                   | bbox | class cx cy w h (normalised)    |
| polygon   | segmentation                           | -    | class x1 y1 x2 y2 ... (norm.)   |
| brush     | segmentation per outer contour         | -    | -                               |
| keypoint  | one `keypoints` annotation per image   | -    | pose: after its parent box      |
| choice    | `image_labels` of the image            | -    | -                               |

The layout follows Label Studio's own converter (its COCO puts every keypoint label under one
category "default", as it does; its VOC truncates to whole pixels, ours does not).
"""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

from gateway.labelstudio.regions import Box, ImageLabels, polygon_area

KEYPOINT_CATEGORY = "default"  # Label Studio's COCO name for the merged keypoint category


def coco(images: list[ImageLabels], names: list[str], keypoint_names: list[str]) -> bytes:
    """`names`: region labels in ontology order (ids from 1); `keypoint_names`: in order."""
    ids = {n: i + 1 for i, n in enumerate(names)}
    categories: list[dict[str, Any]] = [{"id": ids[n], "name": n} for n in names]
    if keypoint_names:
        kp_id = len(names) + 1
        categories.append(
            {"id": kp_id, "name": KEYPOINT_CATEGORY, "keypoints": keypoint_names, "skeleton": []}
        )
    out: dict[str, Any] = {"images": [], "annotations": [], "categories": categories}
    annotations: list[dict[str, Any]] = out["annotations"]

    def add(image_id: int, category: int, **fields: Any) -> None:
        annotations.append(
            {"id": len(annotations) + 1, "image_id": image_id, "category_id": category, **fields}
        )

    for number, image in enumerate(images, start=1):
        entry: dict[str, Any] = {
            "id": number,
            "file_name": f"{image.asset_id}.jpg",
            "width": image.width,
            "height": image.height,
        }
        if image.choices:
            entry["image_labels"] = image.choices
        out["images"].append(entry)
        for b in image.boxes:
            add(number, ids[b.label], bbox=[b.x, b.y, b.w, b.h], area=b.w * b.h, **_plain())
        for p in image.polygons:
            xs, ys = p.points[0::2], p.points[1::2]
            bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            area = polygon_area(p.points)
            add(number, ids[p.label], bbox=bbox, area=area, **_plain([list(p.points)]))
        for m in image.masks:
            for contour, box, area in zip(m.contours, m.boxes, m.areas, strict=True):
                add(number, ids[m.label], bbox=list(box), area=area, **_plain([list(contour)]))
        if image.keypoints:
            add(number, len(names) + 1, **_keypoints(image, keypoint_names))
    return json.dumps(out, indent=1).encode()


def _plain(segmentation: list[list[float]] | None = None) -> dict[str, Any]:
    return {"segmentation": segmentation or [], "iscrowd": 0, "ignore": 0}


def _keypoints(image: ImageLabels, order: list[str]) -> dict[str, Any]:
    flat: list[float] = [0.0] * (3 * len(order))
    for k in image.keypoints:
        i = order.index(k.label)
        flat[3 * i : 3 * i + 3] = [k.x, k.y, 2]
    seen = [i for i in range(len(order)) if flat[3 * i + 2] > 0]
    xs, ys = [flat[3 * i] for i in seen], [flat[3 * i + 1] for i in seen]
    bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    return {"keypoints": flat, "num_keypoints": len(seen), "bbox": bbox, "iscrowd": 0}


def voc(images: list[ImageLabels]) -> dict[str, bytes]:
    files = {}
    for image in images:
        objects = "".join(_voc_object(b) for b in image.boxes)
        files[f"Annotations/{image.asset_id}.xml"] = (
            f"<annotation><filename>{image.asset_id}.jpg</filename><size><width>{image.width}"
            f"</width><height>{image.height}</height><depth>3</depth></size>{objects}"
            "</annotation>\n"
        ).encode()
    return files


def _voc_object(b: Box) -> str:
    corners = (b.x, b.y, b.x + b.w, b.y + b.h)
    tags = "".join(
        f"<{t}>{v!r}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), corners, strict=True)
    )
    name = escape(b.label)
    return f"<object><name>{name}</name><difficult>0</difficult><bndbox>{tags}</bndbox></object>"


def yolo(
    images: list[ImageLabels], names: list[str], keypoint_names: list[str]
) -> dict[str, bytes]:
    """Detection (boxes and polygons) or, when the ontology has keypoints, pose lines: each
    box followed by the keypoints drawn inside it (Label Studio's parentID), x y visibility."""
    ids = {n: i for i, n in enumerate(names)}
    files = {"classes.txt": ("\n".join(names) + "\n").encode()}
    for image in images:
        lines = _pose_lines(image, ids, keypoint_names) if keypoint_names else _lines(image, ids)
        files[f"labels/{image.asset_id}.txt"] = ("\n".join(lines) + "\n" if lines else "").encode()
    return files


def _normalised_box(b: Box, image: ImageLabels) -> list[float]:
    w, h = b.w / image.width, b.h / image.height
    return [b.x / image.width + w / 2, b.y / image.height + h / 2, w, h]


def _lines(image: ImageLabels, ids: dict[str, int]) -> list[str]:
    if not (image.width and image.height):
        return []
    lines = [_join(ids[b.label], _normalised_box(b, image)) for b in image.boxes]
    for p in image.polygons:
        scale = [image.width, image.height] * (len(p.points) // 2)
        lines.append(_join(ids[p.label], [v / s for v, s in zip(p.points, scale, strict=True)]))
    return lines


def _pose_lines(image: ImageLabels, ids: dict[str, int], order: list[str]) -> list[str]:
    if not (image.width and image.height):
        return []
    lines = []
    for b in image.boxes:
        points: list[float] = [0.0, 0.0, 0] * len(order)
        for k in image.keypoints:
            if k.parent_id is not None and k.parent_id == b.region_id:
                i = order.index(k.label)
                points[3 * i : 3 * i + 3] = [k.x / image.width, k.y / image.height, 2]
        lines.append(_join(ids[b.label], _normalised_box(b, image) + points))
    return lines


def _join(class_id: int, values: list[float]) -> str:
    return " ".join([str(class_id), *(repr(v) for v in values)])
