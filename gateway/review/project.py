"""The review project of a dataset on the destination the admin names for review, its
reviewers, and its tasks (one per open review item).

Open-source Label Studio has no per-project membership and its task URLs are bearer links,
so nothing but redacted renditions goes there (gateway.review.images); the gateway keeps
the list of Label Studio users (by keyed pseudonym) whose decisions count."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from gateway.core.clearance import Clearance
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import InvalidRequest, NotFound
from gateway.core.models import Asset, Dataset, Destination, Detection
from gateway.datasets import get_dataset
from gateway.labelstudio.client import LabelStudioClient, RetryPolicy
from gateway.labelstudio.destinations import connect, get_destination, open_secrets
from gateway.labelstudio.projects import webhook_url
from gateway.labelstudio.task_model import TaskData, TaskField
from gateway.lineage import Action, Actor, recorder
from gateway.policy.enforcement import EnforcementPoint, enforce_residency
from gateway.pseudonymisation.policy import PseudonymField
from gateway.pseudonymisation.task_meta import pseudonym
from gateway.review.candidates import candidate_of
from gateway.review.images import review_image_url
from gateway.review.labelconfig import INSTRUCTIONS, engine_prediction, review_label_config
from gateway.review.models import Reviewer, ReviewItem, ReviewProject
from gateway.review.queue import open_items, review_project, review_project_row


def set_review_destination(
    ctx: GatewayContext, session: Session, dataset_ref: str, destination_ref: str, *, actor: Actor
) -> ReviewProject:
    """Name the destination that holds the dataset's review project (once; residency
    checked now and at every task and image)."""
    dataset = get_dataset(session, dataset_ref)
    destination = get_destination(session, destination_ref)
    _check_residency(ctx, session, dataset, destination, actor)
    row = review_project_row(session, dataset.id)
    if row is not None:
        if row.destination_id != destination.id:
            raise InvalidRequest(
                "the dataset's review project is already on another destination",
                destination=row.destination_id,
            )
        return row
    row = ReviewProject(
        dataset_id=dataset.id,
        destination_id=destination.id,
        marker=f"gateway-review:{uuid.uuid4().hex}",
        created_at=ctx.clock(),
    )
    session.add(row)
    session.flush()
    _record(
        ctx,
        session,
        dataset.id,
        Action.REVIEW_DESTINATION_SET,
        actor,
        destination_id=destination.id,
    )
    return row


def reviewer_pseudonym(
    ctx: GatewayContext, session: Session, dataset_id: str, destination_id: str, user: int | str
) -> str:
    """The keyed pseudonym of a Label Studio user on a destination (as annotations name them)."""
    return pseudonym(
        ctx,
        session,
        dataset_id=dataset_id,
        field=PseudonymField.ANNOTATOR,
        value=f"{destination_id}:{user}",
    )


def add_reviewer(
    ctx: GatewayContext, session: Session, dataset_ref: str, *, user: int, actor: Actor
) -> Reviewer:
    """Allow the review destination's Label Studio user `user` (its id) to decide reviews."""
    dataset = get_dataset(session, dataset_ref)
    project = review_project(session, dataset.id)
    name = reviewer_pseudonym(ctx, session, dataset.id, project.destination_id, user)
    row = session.exec(
        select(Reviewer).where(Reviewer.dataset_id == dataset.id, Reviewer.pseudonym == name)
    ).first()
    if row is None:
        row = Reviewer(dataset_id=dataset.id, pseudonym=name, added_by=_who(actor))
    row.added_at, row.removed_at = ctx.clock(), None
    session.add(row)
    _record(ctx, session, dataset.id, Action.REVIEW_REVIEWER_ADDED, actor, reviewer=name)
    return row


def remove_reviewer(
    ctx: GatewayContext, session: Session, dataset_ref: str, *, pseudonym_: str, actor: Actor
) -> None:
    dataset = get_dataset(session, dataset_ref)
    row = session.exec(
        select(Reviewer).where(Reviewer.dataset_id == dataset.id, Reviewer.pseudonym == pseudonym_)
    ).first()
    if row is None or row.removed_at is not None:
        raise NotFound("no such reviewer of this dataset", reviewer=pseudonym_)
    row.removed_at = ctx.clock()
    session.add(row)
    _record(ctx, session, dataset.id, Action.REVIEW_REVIEWER_REMOVED, actor, reviewer=pseudonym_)


REVIEW_PULL_LOOP = "review-pull"


def is_open_review_task(ctx: GatewayContext, destination_id: str, task_id: int) -> bool:
    """Does an open review item have this Label Studio task (a webhook's hint, checked)?"""
    with transaction(ctx.engine) as session:
        return (
            session.exec(
                select(ReviewItem).where(
                    ReviewItem.destination_id == destination_id,
                    ReviewItem.ls_task_id == task_id,
                    col(ReviewItem.decided_at).is_(None),
                )
            ).first()
            is not None
        )


def is_reviewer(session: Session, dataset_id: str, name: str) -> bool:
    return (
        session.exec(
            select(Reviewer).where(
                Reviewer.dataset_id == dataset_id,
                Reviewer.pseudonym == name,
                col(Reviewer.removed_at).is_(None),
            )
        ).first()
        is not None
    )


@dataclass
class Pushed:
    project_id: int = 0
    created: list[str] = field(default_factory=list)  # review item ids


def push_review_tasks(
    ctx: GatewayContext, dataset_ref: str, *, actor: Actor, retry: RetryPolicy | None = None
) -> Pushed:
    """Create the review project if needed and one task per open item that has none."""
    with transaction(ctx.engine) as session:
        dataset = get_dataset(session, dataset_ref)
        project = review_project(session, dataset.id)
        destination = get_destination(session, project.destination_id)
        clearance = _check_residency(ctx, session, dataset, destination, actor)
    client = connect(ctx, destination, retry=retry)
    pushed = Pushed()
    try:
        pushed.project_id = _ensure_project(ctx, client, dataset, project, actor)
        with transaction(ctx.engine) as session:
            todo = [i for i in open_items(session, dataset.id) if i.ls_task_id is None]
            tasks = [(i.id, _task(ctx, session, destination, i)) for i in todo]
        if tasks:
            ids = client.import_tasks(pushed.project_id, [t for _, t in tasks], clearance=clearance)
            with transaction(ctx.engine) as session:
                for (item_id, _), task_id in zip(tasks, ids, strict=True):
                    item = session.get(ReviewItem, item_id)
                    assert item is not None  # noqa: S101 (made above, never deleted)
                    item.ls_task_id, item.destination_id = task_id, destination.id
                    session.add(item)
                    pushed.created.append(item_id)
                _record(
                    ctx,
                    session,
                    dataset.id,
                    Action.REVIEW_TASKS_CREATED,
                    actor,
                    project_id=pushed.project_id,
                    items=pushed.created,
                )
    finally:
        client.close()
    return pushed


def _task(
    ctx: GatewayContext, session: Session, destination: Destination, item: ReviewItem
) -> dict[str, Any]:
    asset = session.get(Asset, item.asset_id)
    if asset is None:
        raise NotFound("the review item's asset is gone", asset=item.asset_id)
    url = review_image_url(ctx, session, destination=destination, item=item)
    candidate = candidate_of(session, asset.id)
    has_rendition = asset.redacted_blob is not None or candidate is not None
    note = _note(item, has_rendition=has_rendition)
    data = TaskData(image=url, asset_id=asset.id, review_item=item.id, review_note=note)
    task: dict[str, Any] = {"data": data.to_label_studio()}
    if has_rendition and asset.width and asset.height:
        regions = [
            {"x": d.x, "y": d.y, "w": d.w, "h": d.h}
            for d in session.exec(select(Detection).where(Detection.asset_id == asset.id)).all()
        ]
        hits = candidate.leak_hits if candidate is not None else []
        task["predictions"] = [
            engine_prediction(regions, width=asset.width, height=asset.height, leak_hits=hits)
        ]
    return task


def _note(item: ReviewItem, *, has_rendition: bool) -> str:
    why = {
        "quarantined": "Quarantined by the gateway",
        "flagged": "Flagged by an annotator",
        "sampled": "Random sample of released images",
        # shown as a sample: a reviewer who knew would look harder (gateway.review.calibration)
        "calibration": "Random sample of released images",
    }.get(item.reason, item.reason)
    parts = [why + (f" ({item.detail})" if item.detail else "")]
    if not item.original_available:
        parts.append("the original was already deleted by retention: only REJECT is possible")
    elif not has_rendition:
        parts.append("no redacted copy exists yet: RE-PROCESS or REJECT")
    return ". ".join(parts) + "."


REVIEW_VIEW = "Review"
# reviewers need the image and why it is there; the gateway's ids stay out of the way
HIDDEN_REVIEW_COLUMNS = (
    TaskField.REVIEW_ITEM.column,
    TaskField.ASSET_ID.column,
    TaskField.REVIEW_NOTE.column,
)


def _ensure_project(
    ctx: GatewayContext,
    client: LabelStudioClient,
    dataset: Dataset,
    project: ReviewProject,
    actor: Actor,
) -> int:
    project_id = _created_project(ctx, client, dataset, project, actor)
    if project.webhook_id is None:  # a decision is a hint to read back, as annotations are
        with transaction(ctx.engine) as session:
            destination = get_destination(session, project.destination_id)
        secret = open_secrets(ctx, destination).webhook_secret
        hook = client.create_webhook(project_id, url=webhook_url(destination), secret=secret)
        _update(ctx, project, dataset.id, Action.REVIEW_WEBHOOK_REGISTERED, actor, webhook_id=hook)
    if REVIEW_VIEW not in client.view_titles(project_id):
        client.create_view(
            project_id, title=REVIEW_VIEW, hidden_columns=list(HIDDEN_REVIEW_COLUMNS)
        )
    return project_id


def _created_project(
    ctx: GatewayContext,
    client: LabelStudioClient,
    dataset: Dataset,
    project: ReviewProject,
    actor: Actor,
) -> int:
    if project.project_id is not None and client.project_exists(project.project_id):
        return project.project_id
    project_id = client.find_project(project.marker) or client.create_project(
        title=f"{dataset.name} (privacy review)"[:50],
        description=f"Privacy review of {dataset.name}\n\n{project.marker}",
        label_config=review_label_config(),
        instructions=INSTRUCTIONS,
    )
    _update(ctx, project, dataset.id, Action.REVIEW_PROJECT_CREATED, actor, project_id=project_id)
    return project_id


def _update(
    ctx: GatewayContext,
    project: ReviewProject,
    dataset_id: str,
    action: Action,
    actor: Actor,
    **fields: Any,
) -> None:
    """Set `fields` on the mapping (its row and the detached `project`) and record `action`
    with them."""
    with transaction(ctx.engine) as session:
        row = session.get(ReviewProject, project.id)
        assert row is not None  # noqa: S101 (the mapping is never deleted)
        for name, value in fields.items():
            setattr(row, name, value)
            setattr(project, name, value)
        session.add(row)
        _record(ctx, session, dataset_id, action, actor, **fields)


def _check_residency(
    ctx: GatewayContext, session: Session, dataset: Dataset, destination: Destination, actor: Actor
) -> Clearance:
    return enforce_residency(
        ctx,
        session,
        point=EnforcementPoint.SYNC,
        dataset_id=dataset.id,
        target_region=destination.region,
        actor=actor,
        entity_type="destination",
        entity_id=destination.id,
        transfer_basis=destination.transfer_basis,
    )


def _who(actor: Actor) -> str:
    return f"{actor.kind}:{actor.id}"[:100]


def _record(
    ctx: GatewayContext,
    session: Session,
    dataset_id: str,
    action: Action,
    actor: Actor,
    **params: Any,
) -> None:
    recorder(ctx, session, actor).record(
        action, entity=dataset_id, dataset=dataset_id, parameters=params
    )
