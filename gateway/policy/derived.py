"""Deleting an asset's data and everything derived from it (retention and erasure share it).

Blobs are deleted before the database says so: a run killed in between leaves a row that
still names a missing blob, and the next run deletes it again (a no-op) and records it.
Label Studio tasks are removed through a `TaskRemover` (the sync module's, by default), which
reports each recipient as removed or removal-pending, so nothing claims a removal it did not do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session, col, delete, select

from gateway.core.context import GatewayContext
from gateway.core.models import Asset, DatasetKey, Detection
from gateway.labelstudio.removal import LabelStudioTaskRemover
from gateway.labelstudio.tables import Annotation
from gateway.review.models import ReviewCandidate


class TaskRemover(Protocol):
    """Removes an asset's Label Studio tasks; returns one entry per recipient (Art. 19):
    {"destination_id", "task_id", "state": "removed" | "removal-pending"}."""

    def remove_tasks(
        self, ctx: GatewayContext, session: Session, *, asset_id: str, reason: str
    ) -> list[dict[str, Any]]: ...


def default_task_remover() -> TaskRemover:
    """The sync module's remover: deletes the tasks in Label Studio and reads them back."""
    remover: TaskRemover = LabelStudioTaskRemover()
    return remover


def delete_blob(ctx: GatewayContext, session: Session, key: str | None, *, owner: str) -> bool:
    """Delete the blob `owner` (an asset id) names, unless another asset row still names it;
    True if something was deleted. New blobs are per asset (`gateway.core.storage`); stores written
    before that may hold one content-addressed blob for several assets, which stays until
    its last user goes (the caller clears its own column, so the last one deletes it)."""
    if key is None:
        return False
    shared = session.exec(
        select(Asset.id)
        .where(
            col(Asset.id) != owner,
            (col(Asset.original_blob) == key) | (col(Asset.redacted_blob) == key),
        )
        .limit(1)
    ).first()
    return shared is None and ctx.store.delete(key)


def delete_detections(session: Session, asset_id: str) -> None:
    """Derived data kept in the gateway: detected regions and the annotations that came back
    from Label Studio (boxes drawn on the subject's image)."""
    session.exec(delete(Detection).where(col(Detection.asset_id) == asset_id))
    session.exec(delete(Annotation).where(col(Annotation.asset_id) == asset_id))


def candidate_key_versions(session: Session, dataset_id: str) -> set[int]:
    """Key versions that sealed the dataset's review candidates (gateway.review.candidates)."""
    return set(
        session.exec(
            select(ReviewCandidate.key_version)
            .join(Asset, col(Asset.id) == col(ReviewCandidate.asset_id))
            .where(Asset.dataset_id == dataset_id)
        ).all()
    )


def shred_unused_key_versions(session: Session, dataset_id: str, *, now: datetime) -> list[int]:
    """Crypto-shred dataset key versions that no stored original, sealed metadata or review
    candidate needs any more (never the newest: new uploads are sealed under it). Returns the
    versions shredded."""
    keys = session.exec(
        select(DatasetKey)
        .where(DatasetKey.dataset_id == dataset_id, col(DatasetKey.wrapped).is_not(None))
        .order_by(col(DatasetKey.version))
    ).all()
    if len(keys) <= 1:
        return []
    in_use = set(
        session.exec(
            select(Asset.key_version).where(
                Asset.dataset_id == dataset_id,
                (col(Asset.original_blob).is_not(None)) | (col(Asset.private_meta).is_not(None)),
            )
        ).all()
    )
    in_use |= candidate_key_versions(session, dataset_id)  # a candidate under review needs it
    shredded = []
    for key in keys[:-1]:
        if key.version not in in_use:
            key.wrapped, key.shredded_at = None, now
            session.add(key)
            shredded.append(key.version)
    return shredded
