"""Lost webhooks: the service runs the pull-based annotation reconcile on a schedule. One tick
(called directly, no waiting) stores an annotation whose webhook never came and a deletion
likewise, is idempotent, and a destination that is down fails alone."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.models import Destination
from gateway.labelstudio.client import RetryPolicy
from gateway.labelstudio.reconcile import AnnotationReconciler
from gateway.labelstudio.server import free_port
from gateway.labelstudio.tables import Annotation, LabelStudioProject
from gateway.main import create_app
from tests.labelstudio.fixtures import add_destination, sync_as_admin
from tests.labelstudio.helpers import lineage, project_tasks, sdk

BOX = {
    "from_name": "boxes",
    "to_name": "image",
    "type": "rectanglelabels",
    "value": {"x": 1, "y": 2, "width": 30, "height": 40, "rectanglelabels": ["person"]},
}


def test_one_reconcile_tick_stores_what_lost_webhooks_missed(
    ctx, dataset, released, destination, labelstudio, gateway_server
) -> None:
    report = sync_as_admin(ctx, dataset, destination)
    other = add_destination(ctx, labelstudio, gateway_server, name="annotators-b", region="eu-de")
    sync_as_admin(ctx, dataset, other)
    with transaction(ctx.engine) as s:
        project = s.exec(
            select(LabelStudioProject).where(LabelStudioProject.destination_id == destination.id)
        ).one()
        down = s.get(Destination, other.id)
        down.url = f"http://127.0.0.1:{free_port()}"  # the second Label Studio went away
        s.add(down)
    task = project_tasks(labelstudio, report.project_id)[0]
    with sdk(labelstudio) as client:
        client.webhooks.delete(project.webhook_id)  # every webhook from now on is lost
        made = client.annotations.create(task["id"], result=[BOX])
    with transaction(ctx.engine) as s:
        assert s.exec(select(Annotation)).all() == []  # the webhook never came

    waits: list[float] = []
    reconciler = AnnotationReconciler(
        ctx,
        interval_seconds=600,
        retry=RetryPolicy(attempts=2, first_delay=0.01, sleep=waits.append),
    )
    tick = reconciler.run_once()
    assert tick.failed == {"annotators-b": "labelstudio-unavailable"} and waits == [0.01]
    assert tick.pulled["annotators-eu"].tasks == len(released)
    with transaction(ctx.engine) as s:
        rows = s.exec(select(Annotation)).all()
        assert [(r.ls_annotation_id, r.task_id, r.deleted_at) for r in rows] == [
            (made.id, task["id"], None)
        ]
        assert rows[0].result[0]["value"]["rectanglelabels"] == ["person"]
    received = lineage(ctx, "annotation.received")
    assert len(received) == 1 and received[0]["actor"]["id"] == "annotation-reconcile"

    reconciler.run_once()  # nothing new: nothing stored or recorded twice
    assert len(lineage(ctx, "annotation.received")) == 1

    with sdk(labelstudio) as client:
        client.annotations.delete(made.id)
    reconciler.run_once()
    with transaction(ctx.engine) as s:
        assert s.exec(select(Annotation)).one().deleted_at is not None
    assert len(lineage(ctx, "annotation.deleted")) == 1


def test_the_service_lifespan_starts_and_stops_the_reconcile(ctx, session_redactor) -> None:
    for interval, running in ((3600.0, True), (0.0, False)):
        settings = ctx.settings.model_copy(update={"annotation_pull_interval_seconds": interval})
        app = create_app(settings, ctx=ctx, redactor_factory=lambda: session_redactor)
        with TestClient(app):
            loops = {s.name: s.running for s in app.state.supervisor.health()}
            assert loops.get("annotation-reconcile", False) is running
        assert not any(s.running for s in app.state.supervisor.health())
