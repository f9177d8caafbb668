"""The demo: the bundled photos go through the whole embedded gateway, end to end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlmodel import select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Asset, Dataset, Detection, LegalBasis
from gateway.core.settings import Settings
from gateway.core.storage import get_cleared
from gateway.datasets import DatasetSpec, create_dataset
from gateway.ingest_dir import ingest_directory
from gateway.lineage import Actor, verify_chain
from gateway.lineage.checkpoints import create_checkpoint
from gateway.lineage.ledger import drain
from gateway.lineage.live import verify_live_ledger, verify_options, with_own_key
from gateway.lineage.signing import ensure_signing_key
from gateway.policy.enforcement import EnforcementPoint, enforce_residency
from gateway.processing import process_pending
from gateway.reports.demo_reports import write_demo_reports
from gateway.shipped import shipped_path

PHOTOS = shipped_path("demo_photos")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"}
DEMO_DATASET = DatasetSpec(
    name="demo-street-scenes",
    purpose="Train a pedestrian and vehicle detector for driver-assistance research.",
    controller="Example Research Lab (demo)",
    legal_basis=LegalBasis.LEGITIMATE_INTERESTS,
    data_subject_categories=["passers-by", "drivers"],
    personal_data_categories=["facial images", "vehicle registration plates"],
    ontology={
        "labels": [
            {"name": "person", "control": "box"},
            {"name": "vehicle", "control": "box"},
            {"name": "mask_worn", "control": "choice"},
        ],
        "instructions": "Box every person and vehicle; faces and plates are already blurred.",
    },
)


def run_demo(data_dir: Path, *, out: Console, bar_factory: Callable[[], Progress]) -> None:
    settings = Settings(data_dir=data_dir)
    ctx = GatewayContext.open(settings, create_master_key=True)
    try:
        with transaction(ctx.engine) as session:
            found = session.exec(select(Dataset).where(Dataset.name == DEMO_DATASET.name)).first()
            if found is None:
                create_dataset(session, ctx, DEMO_DATASET, actor=Actor("cli", "demo"))
        with bar_factory() as bar:
            task = bar.add_task("importing", total=None)
            summary = ingest_directory(
                ctx,
                PHOTOS,
                dataset_ref=DEMO_DATASET.name,
                include=lambda p: p.suffix.lower() in IMAGE_SUFFIXES,
                progress=lambda d, t: bar.update(task, completed=d, total=t),
            )
            out.print(summary.describe())
            work = bar.add_task("redacting", total=None)
            result = process_pending(
                ctx, progress=lambda d, t: bar.update(work, completed=d, total=t)
            )
            out.print(result.describe())
        names = {o.asset_id: o.filename for o in summary.outcomes}
        _report(ctx, names, data_dir, out)
        write_demo_reports(ctx, DEMO_DATASET.name, data_dir, out=out)
        _checkpoint_and_verify(ctx, data_dir, out)
    finally:
        ctx.close()


def _checkpoint_and_verify(ctx: GatewayContext, data_dir: Path, out: Console) -> None:
    """Sign a checkpoint over everything the demo recorded (the service's checkpointer does
    this at intervals), then verify the live ledger as `privacy-gateway verify` does."""
    with transaction(ctx.engine) as session:
        ensure_signing_key(ctx, session)
    drain(ctx.engine)
    with transaction(ctx.engine) as session:
        create_checkpoint(ctx, session)
    options = verify_options(ctx.settings, trusted_keys=(), fingerprints=(), against=())
    with transaction(ctx.engine) as session:
        result = verify_live_ledger(session, with_own_key(options, ctx.keys, session))
    for line in result.describe():
        out.print(line, markup=False, highlight=False)
    out.print(f"check it: GATEWAY_DATA_DIR={data_dir} privacy-gateway verify")


def _report(ctx: GatewayContext, names: dict[str, str], data_dir: Path, out: Console) -> None:
    export = data_dir / "redacted-preview"
    export.mkdir(parents=True, exist_ok=True)
    table = Table("file", "state", "faces", "plates", "text", "redacted copy")
    with transaction(ctx.engine) as session:
        for asset_id, name in sorted(names.items(), key=lambda kv: kv[1]):
            asset = session.get(Asset, asset_id)
            if asset is None:
                continue
            labels = [
                d.label
                for d in session.exec(
                    select(Detection).where(
                        Detection.asset_id == asset_id, Detection.stage == "detect"
                    )
                )
            ]
            copy = ""
            if asset.redacted_blob:
                clearance = enforce_residency(  # a preview folder on this machine: an export
                    ctx,
                    session,
                    point=EnforcementPoint.EXPORT,
                    dataset_id=asset.dataset_id,
                    target_region=ctx.settings.region,
                    actor=Actor("cli", "demo"),
                    entity_type="asset",
                    entity_id=asset.id,
                )
                target = export / f"{Path(name).stem}.{asset.redacted_blob.rsplit('.', 1)[-1]}"
                target.write_bytes(
                    get_cleared(
                        ctx.store,
                        asset.redacted_blob,
                        clearance,
                        point=EnforcementPoint.EXPORT,
                        to_region=ctx.settings.region,
                    )
                )
                copy = str(target)
            table.add_row(
                name,
                str(asset.state),
                str(labels.count("face")),
                str(labels.count("plate")),
                str(labels.count("text")),
                copy,
            )
        records = verify_chain(session)
    out.print(table)
    out.print(f"lineage: {records} hash-chained records, chain verified")
    out.print(f"database: {ctx.settings.resolved_database_url}")
    out.print(f"encrypted originals: {ctx.settings.resolved_storage_dir / 'originals'}")
    out.print(f"redacted copies (preview, metadata-free): {export}")
    out.print("Redacted images of people are still personal data: pseudonymised, not anonymous.")
