"""Export the gateway's stored annotations as COCO, Pascal VOC or YOLO (residency-checked like
any other data move). Boxes go to all three; polygons to COCO segmentations; keypoints,
brushes and image-level choices are not part of these formats and are left out (counted).
Images are named by gateway asset id, never by an original file name."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from xml.sax.saxutils import escape

from sqlmodel import Session, col, select

from gateway import crypto
from gateway.context import GatewayContext
from gateway.datasets import ControlType, Ontology, get_dataset
from gateway.labelstudio.config import control_of
from gateway.labelstudio.tables import Annotation
from gateway.lineage import Actor, append
from gateway.models import Asset, AssetState
from gateway.policy.enforcement import EnforcementPoint, enforce_residency

EXPORTABLE = (AssetState.RELEASED,)  # with or without its original


class ExportFormat(StrEnum):
    COCO = "coco"
    VOC = "voc"
    YOLO = "yolo"


@dataclass(frozen=True, slots=True)
class Box:
    label: str
    x: float  # pixels, top-left
    y: float
    w: float
    h: float


@dataclass
class ImageLabels:
    asset_id: str
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    polygons: list[tuple[str, list[float]]] = field(default_factory=list)


@dataclass
class Export:
    files: dict[str, bytes]
    images: int
    skipped_regions: int


def export_annotations(
    ctx: GatewayContext,
    session: Session,
    *,
    dataset_ref: str,
    fmt: ExportFormat,
    actor: Actor,
    target_region: str | None = None,
) -> Export:
    dataset = get_dataset(session, dataset_ref)
    region = target_region or ctx.settings.region
    enforce_residency(
        ctx,
        session,
        point=EnforcementPoint.EXPORT,
        dataset_id=dataset.id,
        target_region=region,
        actor=actor,
        entity_type="dataset",
        entity_id=dataset.id,
    )
    names = [label.name for label in Ontology.model_validate(dataset.ontology).labels]
    images, skipped = collect(session, dataset.id, known=set(names))
    files = WRITERS[fmt](images, names)
    digest = crypto.sha256_hex(b"".join(files[k] for k in sorted(files)))
    append(
        session,
        action="annotations.exported",
        entity_type="dataset",
        entity_id=dataset.id,
        dataset_id=dataset.id,
        actor=actor,
        now=ctx.clock(),
        region=ctx.settings.region,
        outputs={"files": len(files), "images": len(images), "sha256": digest},
        parameters={"format": fmt.value, "target_region": region, "skipped": skipped},
    )
    return Export(files, len(images), skipped)


def collect(session: Session, dataset_id: str, *, known: set[str]) -> tuple[list[ImageLabels], int]:
    """The latest live annotation of every exportable asset, as boxes and polygons."""
    rows = session.exec(
        select(Annotation, Asset)
        .join(Asset, col(Asset.id) == col(Annotation.asset_id))
        .where(
            Asset.dataset_id == dataset_id,
            col(Asset.state).in_(EXPORTABLE),
            col(Annotation.deleted_at).is_(None),
            col(Annotation.was_cancelled).is_(False),
        )
        .order_by(col(Asset.id), col(Annotation.updated_at).desc())
    ).all()
    images: list[ImageLabels] = []
    skipped = 0
    for annotation, asset in rows:
        if images and images[-1].asset_id == asset.id:
            continue  # an older annotation of the same image
        image = ImageLabels(asset.id, asset.width or 0, asset.height or 0)
        skipped += _add_regions(image, annotation.result)
        before = len(image.boxes) + len(image.polygons)
        image.boxes = [b for b in image.boxes if b.label in known]
        image.polygons = [p for p in image.polygons if p[0] in known]
        skipped += before - len(image.boxes) - len(image.polygons)  # labels no longer in use
        images.append(image)
    return images, skipped


def _add_regions(image: ImageLabels, result: Iterable[dict[str, Any]]) -> int:
    skipped = 0
    for item in result:
        control, value = control_of(str(item.get("from_name"))), item.get("value") or {}
        if control is ControlType.BOX:
            for label in value.get("rectanglelabels") or []:
                image.boxes.append(
                    Box(
                        label,
                        value["x"] * image.width / 100,
                        value["y"] * image.height / 100,
                        value["width"] * image.width / 100,
                        value["height"] * image.height / 100,
                    )
                )
        elif control is ControlType.POLYGON:
            flat = [
                c
                for x, y in value.get("points") or []
                for c in (x * image.width / 100, y * image.height / 100)
            ]
            image.polygons += [(label, flat) for label in value.get("polygonlabels") or []]
        elif control is not None or item.get("from_name") != "privacy_flag":
            skipped += 1
    return skipped


def _coco(images: list[ImageLabels], names: list[str]) -> dict[str, bytes]:
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    ids = {n: i + 1 for i, n in enumerate(names)}
    out: dict[str, Any] = {"images": [], "annotations": [], "categories": categories}
    for number, image in enumerate(images, start=1):
        out["images"].append(
            {
                "id": number,
                "file_name": f"{image.asset_id}.jpg",
                "width": image.width,
                "height": image.height,
            }
        )
        for box in image.boxes:
            out["annotations"].append(
                {
                    "id": len(out["annotations"]) + 1,
                    "image_id": number,
                    "category_id": ids[box.label],
                    "bbox": [round(v, 2) for v in (box.x, box.y, box.w, box.h)],
                    "area": round(box.w * box.h, 2),
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
        for label, flat in image.polygons:
            xs, ys = flat[0::2], flat[1::2]
            bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            out["annotations"].append(
                {
                    "id": len(out["annotations"]) + 1,
                    "image_id": number,
                    "category_id": ids[label],
                    "bbox": [round(v, 2) for v in bbox],
                    "area": round(bbox[2] * bbox[3], 2),
                    "iscrowd": 0,
                    "segmentation": [[round(v, 2) for v in flat]],
                }
            )
    return {"annotations.json": json.dumps(out, indent=1).encode()}


def _voc(images: list[ImageLabels], names: list[str]) -> dict[str, bytes]:
    del names
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
    corners = (round(b.x), round(b.y), round(b.x + b.w), round(b.y + b.h))
    tags = "".join(
        f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), corners, strict=True)
    )
    name = escape(b.label)
    return f"<object><name>{name}</name><difficult>0</difficult><bndbox>{tags}</bndbox></object>"


def _yolo(images: list[ImageLabels], names: list[str]) -> dict[str, bytes]:
    ids = {n: i for i, n in enumerate(names)}
    files = {"classes.txt": ("\n".join(names) + "\n").encode()}
    for image in images:
        lines = [
            _yolo_line(ids[b.label], b, image) for b in image.boxes if image.width and image.height
        ]
        files[f"labels/{image.asset_id}.txt"] = ("\n".join(lines) + "\n" if lines else "").encode()
    return files


def _yolo_line(class_id: int, b: Box, image: ImageLabels) -> str:
    cx, cy = (b.x + b.w / 2) / image.width, (b.y + b.h / 2) / image.height
    return f"{class_id} {cx:.6f} {cy:.6f} {b.w / image.width:.6f} {b.h / image.height:.6f}"


WRITERS = {ExportFormat.COCO: _coco, ExportFormat.VOC: _voc, ExportFormat.YOLO: _yolo}
