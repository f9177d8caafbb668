"""The alternative image route: Label Studio's own local-files storage, pointed at an export
of the gateway's redacted copies (and nothing else).

Per destination (`image_delivery = "local-files"`): Label Studio runs with
LOCAL_FILES_SERVING_ENABLED=true and LOCAL_FILES_DOCUMENT_ROOT = the destination's
`local_files_root` (a directory both hosts share). Each sync writes the released assets'
redacted copies to `<root>/gateway/<destination>/<dataset>/<asset>-<sha256[:16]>.<ext>`,
connects that folder to the project as a local-files storage (never synced: the gateway still
imports the tasks, with the same task data), and the task's `image` is
`/data/local-files/?d=<relative path>`, which Label Studio serves to logged-in users of the
project. What this route gives up: the gateway no longer sees each fetch, so the checks a
signed URL makes per request are replaced by deleting the exported file whenever the task is
withdrawn, removed, erased or expired, or the asset is redacted again.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from sqlmodel import Session

from gateway.core.context import GatewayContext
from gateway.core.errors import InvalidRequest, NotFound
from gateway.core.models import Asset, Destination
from gateway.core.storage import get_cleared
from gateway.labelstudio.client import LabelStudioClient
from gateway.lineage import Actor
from gateway.policy.enforcement import EnforcementPoint, enforce_residency

LOCAL_FILES = "local-files"
STORAGE_TITLE = "privacy gateway: redacted copies"
EXPORTER = Actor("system", "labelstudio-local-files")


def uses_local_files(destination: Destination) -> bool:
    return destination.image_delivery == LOCAL_FILES


def _root(destination: Destination) -> Path:
    if not destination.local_files_root:
        raise InvalidRequest("the destination has no local-files root", name=destination.name)
    return Path(destination.local_files_root)


def export_dir(destination: Destination, dataset_id: str) -> Path:
    return _root(destination) / "gateway" / destination.id / dataset_id


def local_file_url(
    ctx: GatewayContext, session: Session, destination: Destination, asset: Asset
) -> str:
    """Export the asset's current redacted copy (once) and return its Label Studio URL;
    copies of earlier redactions of the asset are deleted. The export is where the copy
    reaches the destination, so residency is checked right here."""
    if asset.redacted_blob is None or asset.redacted_sha256 is None:
        raise NotFound("the asset has no redacted copy", asset_id=asset.id)
    clearance = enforce_residency(
        ctx,
        session,
        point=EnforcementPoint.SYNC,
        dataset_id=asset.dataset_id,
        target_region=destination.region,
        actor=EXPORTER,
        entity_type="asset",
        entity_id=asset.id,
        transfer_basis=destination.transfer_basis,
    )
    folder = export_dir(destination, asset.dataset_id)
    folder.mkdir(parents=True, exist_ok=True)
    extension = asset.redacted_blob.rsplit(".", 1)[-1]
    target = folder / f"{asset.id}-{asset.redacted_sha256[:16]}.{extension}"
    if not target.exists():
        partial = target.with_suffix(".partial")
        partial.write_bytes(
            get_cleared(
                ctx.store,
                asset.redacted_blob,
                clearance,
                point=EnforcementPoint.SYNC,
                to_region=destination.region,
            )
        )
        os.replace(partial, target)
    for older in folder.glob(f"{asset.id}-*"):
        if older != target:
            older.unlink(missing_ok=True)
    relative = target.relative_to(_root(destination)).as_posix()
    return f"/data/local-files/?d={quote(relative)}"


def delete_exports(destination: Destination, dataset_id: str, asset_id: str) -> list[str]:
    """Delete every exported copy of the asset; the names deleted."""
    if not uses_local_files(destination):
        return []
    gone = []
    for path in export_dir(destination, dataset_id).glob(f"{asset_id}-*"):
        path.unlink(missing_ok=True)
        gone.append(path.name)
    return gone


def ensure_local_storage(
    client: LabelStudioClient, destination: Destination, dataset_id: str, project_id: int
) -> bool:
    """Connect the export folder to the project once; True when it was connected now."""
    folder = export_dir(destination, dataset_id)
    folder.mkdir(parents=True, exist_ok=True)
    if str(folder) in client.local_storage_paths(project_id):
        return False
    client.create_local_storage(project_id, path=str(folder), title=STORAGE_TITLE)
    return True
