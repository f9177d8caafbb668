"""The data of one Label Studio task (TaskData): the signed URL of the redacted rendition,
the gateway ids, and only pseudonymous, policy-allowed metadata. For a local-files
destination the `image` is Label Studio's own local-files URL of an exported redacted copy."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from gateway.core.context import GatewayContext
from gateway.core.models import Asset, Destination
from gateway.labelstudio.local_files import local_file_url, uses_local_files
from gateway.labelstudio.task_model import TaskData
from gateway.labelstudio.urls import image_url
from gateway.pseudonymisation.task_meta import task_metadata


def task_data(
    ctx: GatewayContext, session: Session, destination: Destination, asset: Asset
) -> dict[str, Any]:
    if uses_local_files(destination):
        image = local_file_url(ctx, session, destination, asset)
    else:
        image = image_url(ctx, session, destination=destination, asset=asset)
    return TaskData(
        image=image,
        asset_id=asset.id,
        dataset_id=asset.dataset_id,
        meta=task_metadata(ctx, session, asset),
    ).to_label_studio()
