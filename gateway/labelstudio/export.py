"""Export the gateway's stored annotations as COCO, Pascal VOC or YOLO (residency-checked like
any other data move), at Label Studio's full precision. Which region goes where is in
export_formats.py; regions a format cannot carry are left out and counted. Images are named
by gateway asset id, never by an original file name.

`export_annotations` checks residency and returns the files with the export's `Clearance`;
`write_export` is the sink that writes them, and requires that clearance for the export's
dataset and region."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlmodel import Session, col, select

from gateway.core import crypto
from gateway.core.clearance import Clearance
from gateway.core.context import GatewayContext
from gateway.core.models import Asset, AssetState
from gateway.datasets import ControlType, Ontology, get_dataset
from gateway.labelstudio import export_formats
from gateway.labelstudio.regions import ImageLabels, image_labels
from gateway.labelstudio.tables import Annotation
from gateway.lineage import Action, Actor, recorder
from gateway.policy.enforcement import EnforcementPoint, enforce_residency

EXPORTABLE = (AssetState.RELEASED,)  # with or without its original


class ExportFormat(StrEnum):
    COCO = "coco"
    VOC = "voc"
    YOLO = "yolo"


@dataclass(frozen=True)
class Export:
    files: dict[str, bytes]
    images: int
    skipped_regions: int
    dataset_id: str
    region: str  # where the export goes
    clearance: Clearance  # what the residency check cleared for it


def write_export(out_dir: Path, export: Export, *, clearance: Clearance) -> list[Path]:
    """Write an export's files, refused (`ClearanceMismatch`, nothing written) unless
    `clearance` covers the export of its dataset to its region."""
    clearance.require(EnforcementPoint.EXPORT, dataset_id=export.dataset_id, region=export.region)
    written = []
    for name, data in export.files.items():
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    return written


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
    clearance = enforce_residency(
        ctx,
        session,
        point=EnforcementPoint.EXPORT,
        dataset_id=dataset.id,
        target_region=region,
        actor=actor,
        entity_type="dataset",
        entity_id=dataset.id,
    )
    ontology = Ontology.model_validate(dataset.ontology)
    images = collect(session, dataset.id, known={label.name for label in ontology.labels})
    files = write(fmt, images, ontology)
    skipped = sum(image.skipped for image in images)
    digest = crypto.sha256_hex(b"".join(files[k] for k in sorted(files)))
    recorder(ctx, session, actor).record(
        Action.ANNOTATIONS_EXPORTED,
        entity=dataset.id,
        dataset=dataset.id,
        outputs={"files": len(files), "images": len(images), "sha256": digest},
        parameters={"format": fmt.value, "target_region": region, "skipped": skipped},
    )
    return Export(files, len(images), skipped, dataset.id, region, clearance)


def collect(session: Session, dataset_id: str, *, known: set[str]) -> list[ImageLabels]:
    """The latest live annotation of every exportable asset, as shapes in pixels."""
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
    for annotation, asset in rows:
        if images and images[-1].asset_id == asset.id:
            continue  # an older annotation of the same image
        image = image_labels(
            asset.id, annotation.result, width=asset.width or 0, height=asset.height or 0
        )
        image.keep_only(known)
        images.append(image)
    return images


def write(fmt: ExportFormat, images: list[ImageLabels], ontology: Ontology) -> dict[str, bytes]:
    """The files of one export; label ids follow the ontology's order."""
    regions = [
        label.name
        for label in ontology.labels
        if label.control not in (ControlType.KEYPOINT, ControlType.CHOICE)
    ]
    keypoints = [label.name for label in ontology.labels if label.control == ControlType.KEYPOINT]
    for image in images:
        image.skipped += left_out(fmt, image, pose=bool(keypoints))
    if fmt is ExportFormat.COCO:
        return {"annotations.json": export_formats.coco(images, regions, keypoints)}
    if fmt is ExportFormat.VOC:
        return export_formats.voc(images)
    return export_formats.yolo(images, regions, keypoints)


def left_out(fmt: ExportFormat, image: ImageLabels, *, pose: bool) -> int:
    """How many of an image's regions the format has no place for (export_formats' table)."""
    if fmt is ExportFormat.COCO:
        return 0
    if fmt is ExportFormat.VOC:
        return len(image.polygons) + len(image.masks) + len(image.keypoints) + len(image.choices)
    unparented = sum(k.parent_id is None for k in image.keypoints)
    return len(image.masks) + len(image.choices) + (len(image.polygons) + unparented) * pose
