"""Governance report generation at 1k, 10k and 100k assets (synthetic records).

    .venv/bin/python bench/report.py                      # 1000 10000 100000 on SQLite
    .venv/bin/python bench/report.py --sizes 1000 --database-url postgresql+psycopg://...

Each size gets a fresh database: one dataset, N assets in realistic states, two detections per
asset, every lineage record the pipeline writes for them (through the real ledger: outbox,
sequencer, hash chain), and two annotators on 10% of the assets. Then the signed report is
generated as a user would (`generate_dataset_report`), timed, and generated again under
tracemalloc for the peak of Python allocations. The chain verification (a full pass over the
ledger) is timed on its own as well, since it is the one part linear in the ledger's size.
Results: bench/results/report-<date>.json and .md, with machine, date and commit.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.context import GatewayContext  # noqa: E402
from gateway.datasets import DatasetSpec, create_dataset  # noqa: E402
from gateway.db import make_engine, migrate, transaction  # noqa: E402
from gateway.keys import KeyProvider, LocalMasterKey  # noqa: E402
from gateway.labelstudio.tables import Annotation  # noqa: E402
from gateway.lineage import Actor, append, verify_chain  # noqa: E402
from gateway.lineage.ledger import drain  # noqa: E402
from gateway.models import Asset, AssetState, AssetSync, Destination, Detection  # noqa: E402
from gateway.reports.build import generate_dataset_report  # noqa: E402
from gateway.reports.render import ReportFormat, render  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.storage import LocalBlobStore  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)
ACTOR = Actor("system", "bench")
SPEC = {
    "name": "bench",
    "purpose": "Synthetic records for the report benchmark (no images).",
    "controller": "Benchmark",
    "legal_basis": "legitimate_interests",
    "data_subject_categories": ["passers-by"],
    "personal_data_categories": ["facial images"],
    "ontology": {"labels": [{"name": "person", "control": "box"}]},
}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def open_context(url: str, data_dir: Path) -> GatewayContext:
    key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(data_dir=data_dir, database_url=url, master_key=key, workers=1)
    engine = make_engine(url)
    migrate(engine)
    master = LocalMasterKey(base64.b64decode(key))
    return GatewayContext(
        settings=settings,
        engine=engine,
        keys=KeyProvider(master),
        store=LocalBlobStore(settings.resolved_storage_dir),
        clock=Clock(),
    )


def state_of(i: int) -> AssetState:
    return (
        [AssetState.QUARANTINED, AssetState.REJECTED][i % 2] if i % 20 == 0 else AssetState.RELEASED
    )


def original_deleted(i: int) -> bool:
    """One released asset in 20 whose original retention has deleted (the state stays)."""
    return i % 20 == 10


def populate(ctx: GatewayContext, n: int, batch: int = 2000) -> str:
    with transaction(ctx.engine) as s:
        dataset = create_dataset(s, ctx, DatasetSpec.model_validate(SPEC), actor=ACTOR)
        dataset_id = dataset.id
        destination_id = str(uuid.uuid4())
        s.add(
            Destination(
                id=destination_id,
                name="bench-ls",
                url="http://127.0.0.1:9",
                region="eu-de",
                token_sealed=b"unused",
                created_at=ctx.clock(),
            )
        )
    for lo in range(0, n, batch):
        with transaction(ctx.engine) as s:
            rows = [_asset(ctx, dataset_id, i) for i in range(lo, min(n, lo + batch))]
            s.execute(insert(Asset), rows)
            s.execute(insert(Detection), [d for r in rows for d in _detections(r)])
            synced = [r for r in rows if r["state"] == AssetState.RELEASED]
            s.execute(insert(AssetSync), [_sync(r, destination_id) for r in synced])
            notes = [
                a
                for r in synced
                if int(r["content_digest"], 16) % 10 == 0
                for a in _annotations(r, destination_id)
            ]
            if notes:
                s.execute(insert(Annotation), notes)
            for r in rows:
                _lineage(s, r)
        drain(ctx.engine)
    return dataset_id


def _asset(ctx: GatewayContext, dataset_id: str, i: int) -> dict[str, Any]:
    now = ctx.clock()
    state = state_of(i)
    gone = original_deleted(i)
    return {
        "id": str(uuid.uuid4()),
        "dataset_id": dataset_id,
        "state": state,
        "content_digest": f"{i:064x}",
        "source_format": "jpeg",
        "width": 1920,
        "height": 1080,
        "byte_size": 400_000,
        "reasons": [],
        "created_at": now,
        "updated_at": now,
        "original_blob": None if gone else f"o/{i}",
        "original_deleted_at": now if gone else None,
        "redacted_blob": f"r/{i}" if state == AssetState.RELEASED else None,
    }


def _detections(asset: dict[str, Any]) -> list[dict[str, Any]]:
    base = {"asset_id": asset["id"], "x": 10, "y": 10, "w": 40, "h": 40, "score_milli": 900}
    return [
        base | {"label": "face", "detector": "centerface", "stage": "detect"},
        base | {"label": "plate", "detector": "pp-ocrv4-plates", "stage": "detect"},
    ]


def _sync(asset: dict[str, Any], destination_id: str) -> dict[str, Any]:
    return {
        "asset_id": asset["id"],
        "destination_id": destination_id,
        "state": "synced",
        "task_id": int(asset["content_digest"], 16),
        "updated_at": asset["created_at"],
    }


def _annotations(asset: dict[str, Any], destination_id: str) -> list[dict[str, Any]]:
    task = int(asset["content_digest"], 16)
    rows = []
    for k, shift in ((1, 0.0), (2, 2.0)):
        value = {"x": 10 + shift, "y": 10, "width": 30, "height": 40, "rectanglelabels": ["person"]}
        rows.append(
            {
                "asset_id": asset["id"],
                "destination_id": destination_id,
                "task_id": task,
                "ls_annotation_id": task * 10 + k,
                "annotator": f"annotator-{k}",
                "result": [{"type": "rectanglelabels", "from_name": "boxes", "value": value}],
                "was_cancelled": False,
                "created_at": asset["created_at"],
                "updated_at": asset["created_at"],
            }
        )
    return rows


def _lineage(session: Any, asset: dict[str, Any]) -> None:
    def record(action: str, **parameters: Any) -> None:
        append(
            session,
            action=action,
            entity_type="asset",
            entity_id=asset["id"],
            dataset_id=asset["dataset_id"],
            actor=ACTOR,
            now=asset["created_at"],
            region="eu-de",
            parameters=parameters,
        )

    if asset["state"] == AssetState.REJECTED:
        record("asset.rejected", reasons=["corrupt-image"])
        return
    record("asset.received", format="jpeg", bytes=400_000)
    record("asset.processing", attempt=1)
    tools = [{"name": "centerface", "version": "1"}]
    if asset["state"] == AssetState.QUARANTINED:
        record("asset.quarantined", reasons=["leak-check"], tools=tools, regions={"face": 1})
        return
    record(
        "asset.released",
        tools=tools,
        regions={"face": 1, "plate": 1},
        redaction_policy_sha256="0" * 64,
    )
    if asset["original_deleted_at"] is not None:
        record("asset.original_deleted", state="released")


def measure(ctx: GatewayContext, dataset_id: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    signed = generate_dataset_report(ctx, dataset_id, actor=ACTOR)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    body = render(signed, ReportFormat.JSON)
    html = render(signed, ReportFormat.HTML)
    render_seconds = time.perf_counter() - t1
    with transaction(ctx.engine) as s:
        t2 = time.perf_counter()
        records = verify_chain(s)
        verify_seconds = time.perf_counter() - t2
    tracemalloc.start()
    generate_dataset_report(ctx, dataset_id, actor=ACTOR)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    report = signed.report
    return {
        "report_seconds": round(seconds, 3),
        "chain_verification_alone_seconds": round(verify_seconds, 3),
        "json_and_html_render_seconds": round(render_seconds, 3),
        "python_peak_mib": round(peak / 2**20, 2),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "lineage_records": records,
        "json_bytes": len(body),
        "html_bytes": len(html),
        "annotations": report.annotation_quality.annotations if report.annotation_quality else 0,  # type: ignore[union-attr]
    }


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "commit": commit,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--database-url", help="default: a fresh SQLite file per size")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "runs": [],
    }
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.database_url or f"sqlite:///{tmp}/bench.db"
            ctx = open_context(url, Path(tmp))
            t0 = time.perf_counter()
            dataset_id = populate(ctx, n)
            fill = time.perf_counter() - t0
            run = {
                "assets": n,
                "backend": ctx.engine.dialect.name,
                "populate_seconds": round(fill, 1),
                **measure(ctx, dataset_id),
            }
            ctx.close()
        print(json.dumps(run))
        results["runs"].append(run)
    write(results)


def write(results: dict[str, Any]) -> None:
    out = ROOT / "bench" / "results"
    stem = f"report-{results['date'][:10]}"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    m = results["machine"]
    lines = [
        f"# Governance report generation ({results['date']})",
        "",
        f"Commit `{m['commit']}`; {m['cpu']}, {m['cores']} cores (shared; load average at "
        f"start {m['loadavg_at_start']}); Python {m['python']}. Synthetic records, see "
        "`bench/report.py`.",
        "",
        "| assets | backend | lineage records | report (s) | chain verification alone (s) "
        "| JSON+HTML render (s) | Python peak (MiB) | max RSS (MiB) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['assets']} | {r['backend']} | {r['lineage_records']} | {r['report_seconds']} | "
        f"{r['chain_verification_alone_seconds']} | {r['json_and_html_render_seconds']} | "
        f"{r['python_peak_mib']} | {r['max_rss_mib']} |"
        for r in results["runs"]
    ]
    lines += ["", NOTE]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")


NOTE = (
    "`report` is `generate_dataset_report` end to end (collect in the database, verify the "
    "whole lineage chain from genesis, sign, record); the chain verification is then timed "
    "alone, as the one part linear in the size of the whole ledger. Python peak is "
    "tracemalloc's peak over a second generation: the collectors aggregate in the database "
    "and annotations stream one asset at a time, so it stays flat as the dataset grows."
)


if __name__ == "__main__":
    main()
