"""The webhook's read-back and the annotation pull can store the same Label Studio annotation
at the same moment: the second writer must find the first one's row, not fail on the unique
key, and the ledger must record the annotation once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import AssetSync, Dataset, Destination, SyncState
from gateway.ingest import Upload, ingest_upload
from gateway.labelstudio.annotation_store import HeldAnnotation, store_annotation
from gateway.labelstudio.destinations import DestinationSecrets, seal_secrets
from gateway.labelstudio.tables import Annotation
from gateway.lineage import Actor
from tests.conftest import PHOTOS
from tests.labelstudio.helpers import lineage

pytestmark = pytest.mark.db
TASK = 100
BOX = {
    "type": "rectanglelabels",
    "from_name": "label",
    "to_name": "image",
    "value": {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["pedestrian"]},
}


def _synced_asset(ctx: GatewayContext, dataset: Dataset) -> Destination:
    destination_id = str(uuid.uuid4())
    with transaction(ctx.engine) as s:
        photo = sorted(PHOTOS.glob("*.jpg"))[0]
        upload = Upload(photo.name, photo.read_bytes())
        asset_id = ingest_upload(s, ctx, dataset, upload, actor=Actor("cli", "t")).asset_id
        destination = Destination(
            id=destination_id,
            name="annotators",
            url="http://127.0.0.1:9",
            region="eu-de",
            token_sealed=seal_secrets(ctx, destination_id, DestinationSecrets("t", "w")),
            master_key_id=ctx.keys.master.key_id,
            created_at=ctx.clock(),
        )
        s.add(destination)
        s.flush()
        s.add(
            AssetSync(
                asset_id=asset_id,
                destination_id=destination_id,
                state=SyncState.SYNCED,
                task_id=TASK,
                updated_at=ctx.clock(),
            )
        )
    return destination


def _race_at_the_annotation_table(
    ctx: GatewayContext, barrier: threading.Barrier, writers: set[int]
) -> Callable[..., None] | None:
    """Hold each writer just before its first statement on the annotation table until both are
    there: both have looked at nothing yet, so both would insert. On SQLite the writers are
    serialised by BEGIN IMMEDIATE (the second cannot reach the table before the first commits),
    so there they only start together."""
    if ctx.engine.dialect.name == "sqlite":
        return None
    arrived: set[int] = set()

    def hold(_conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        me = threading.get_ident()
        if me in writers and me not in arrived and " annotation " in f" {statement} ":
            arrived.add(me)
            barrier.wait(timeout=20)

    event.listen(ctx.engine, "before_cursor_execute", hold)
    return hold


def test_two_concurrent_stores_of_one_annotation_keep_one_row_and_one_record(
    ctx: GatewayContext, dataset: Dataset
) -> None:
    destination = _synced_asset(ctx, dataset)
    held = HeldAnnotation(ls_id=7, task_id=TASK, result=[BOX], was_cancelled=False, completed_by=3)
    start = threading.Barrier(2, timeout=20)
    at_table = threading.Barrier(2, timeout=20)
    writers: set[int] = set()
    hold = _race_at_the_annotation_table(ctx, at_table, writers)
    errors: list[BaseException] = []

    def writer(actor: Actor) -> None:
        writers.add(threading.get_ident())
        try:
            start.wait()
            with transaction(ctx.engine) as session:
                store_annotation(ctx, session, destination, held, actor=actor)
        except BaseException as exc:  # reported below, with its type
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(Actor("system", name),))
        for name in ("labelstudio-webhook-readback", "annotation-pull")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    if hold is not None:
        event.remove(ctx.engine, "before_cursor_execute", hold)
    assert errors == []
    with transaction(ctx.engine) as s:
        rows = s.exec(select(Annotation).where(Annotation.ls_annotation_id == 7)).all()
    assert len(rows) == 1 and rows[0].result == [BOX]
    assert len(lineage(ctx, "annotation.received")) == 1
    assert lineage(ctx, "annotation.updated") == []
