"""The Label Studio project of a dataset on a destination: created once (crash-safe), its
labelling configuration kept at the dataset's current ontology version, its webhook set."""

from __future__ import annotations

import uuid

from sqlmodel import select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import NotFound
from gateway.core.models import Dataset, Destination
from gateway.labelstudio.client import LabelStudioClient
from gateway.labelstudio.config import label_config, parse_ontology
from gateway.labelstudio.destinations import open_secrets
from gateway.labelstudio.errors import LabelStudioRejected
from gateway.labelstudio.ontology import current_ontology_version
from gateway.labelstudio.tables import LabelStudioProject
from gateway.labelstudio.task_model import TaskField
from gateway.lineage import Action, Actor, recorder

PRIVACY_NOTE = (
    "Images are redacted by the privacy gateway: faces, licence plates and personal text are "
    "blurred, metadata is removed. They are still personal data. If you can still see a face, "
    "a plate or personal text, tick the privacy flag and submit: the image is withdrawn at once."
)


ANNOTATOR_VIEW = "Tasks"
# what annotators need is the image and the annotation state; the gateway's ids (for the ML
# backend and the gateway) and the pseudonymous metadata JSON stay in task data, out of the way
HIDDEN_TASK_COLUMNS = (
    TaskField.ASSET_ID.column,
    TaskField.DATASET_ID.column,
    TaskField.META.column,
)


def webhook_url(destination: Destination) -> str:
    return f"{(destination.gateway_url or '').rstrip('/')}/v1/webhooks/labelstudio/{destination.id}"


def ensure_project(
    ctx: GatewayContext,
    client: LabelStudioClient,
    *,
    dataset: Dataset,
    destination: Destination,
    actor: Actor,
) -> int:
    """The Label Studio project id, created (or adopted after a crash) and up to date."""
    row = _project_row(ctx, dataset, destination)
    project_id = row.project_id
    fresh = project_id is None or not client.project_exists(project_id)
    if fresh:
        project_id = client.find_project(row.marker) or _create(ctx, client, dataset, row)
        _record(ctx, row, Action.LABELSTUDIO_PROJECT_CREATED, actor, project_id=project_id)
    if project_id is None:
        raise LabelStudioRejected("Label Studio gave no project id")
    if fresh or row.webhook_id is None:
        secret = open_secrets(ctx, destination).webhook_secret
        hook = client.create_webhook(project_id, url=webhook_url(destination), secret=secret)
        _record(ctx, row, Action.LABELSTUDIO_WEBHOOK_REGISTERED, actor, webhook_id=hook)
    _update_config(ctx, client, dataset, row, project_id, actor)
    ensure_annotator_view(client, project_id)
    return project_id


def ensure_annotator_view(client: LabelStudioClient, project_id: int) -> None:
    """The project's first Data Manager tab shows annotators the image, not our bookkeeping
    (Label Studio otherwise makes one column per task data key, ids and JSON included)."""
    if ANNOTATOR_VIEW not in client.view_titles(project_id):
        client.create_view(
            project_id, title=ANNOTATOR_VIEW, hidden_columns=list(HIDDEN_TASK_COLUMNS)
        )


def _project_row(
    ctx: GatewayContext, dataset: Dataset, destination: Destination
) -> LabelStudioProject:
    with transaction(ctx.engine) as session:
        row = session.exec(
            select(LabelStudioProject).where(
                LabelStudioProject.destination_id == destination.id,
                LabelStudioProject.dataset_id == dataset.id,
            )
        ).first()
        if row is None:  # the intent, written before Label Studio hears of the project
            now = ctx.clock()
            row = LabelStudioProject(
                destination_id=destination.id,
                dataset_id=dataset.id,
                marker=f"gateway-project:{uuid.uuid4().hex}",
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
        return row


def _instructions(dataset: Dataset) -> str:
    text = parse_ontology(dataset.ontology).instructions
    return (
        f"<p>{_escape(text)}</p><p><b>{PRIVACY_NOTE}</b></p>" if text else f"<p>{PRIVACY_NOTE}</p>"
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _create(
    ctx: GatewayContext, client: LabelStudioClient, dataset: Dataset, row: LabelStudioProject
) -> int:
    del ctx
    return client.create_project(
        title=f"{dataset.name} (privacy gateway)"[:50],
        description=f"{dataset.purpose}\n\n{row.marker}",
        label_config=label_config(parse_ontology(dataset.ontology)),
        instructions=_instructions(dataset),
    )


def _update_config(
    ctx: GatewayContext,
    client: LabelStudioClient,
    dataset: Dataset,
    row: LabelStudioProject,
    project_id: int,
    actor: Actor,
) -> None:
    with transaction(ctx.engine) as session:
        version = current_ontology_version(ctx, session, dataset, actor=actor)
        number, document = version.version, version.document
    if row.ontology_version == number:
        return
    client.set_label_config(
        project_id,
        label_config=label_config(parse_ontology(document)),
        instructions=_instructions(dataset),
    )
    _record(ctx, row, Action.LABELSTUDIO_LABEL_CONFIG_SET, actor, ontology_version=number)


def _record(
    ctx: GatewayContext, row: LabelStudioProject, action: Action, actor: Actor, **values: int
) -> None:
    with transaction(ctx.engine) as session:
        fresh = session.get(LabelStudioProject, row.id)
        if fresh is None:
            raise NotFound("the project mapping was removed meanwhile")
        for name, value in values.items():
            setattr(fresh, name, value)
            setattr(row, name, value)
        fresh.updated_at = ctx.clock()
        session.add(fresh)
        recorder(ctx, session, actor, now=fresh.updated_at).record(
            action,
            entity=fresh.destination_id,
            dataset=fresh.dataset_id,
            outputs={"project_id": fresh.project_id or 0, **values},
        )
