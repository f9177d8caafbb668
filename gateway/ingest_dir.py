"""Folder import for the CLI: one transaction per file, so a killed run loses nothing and a
re-run adds nothing twice (assets are keyed by a keyed content digest)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gateway.context import GatewayContext
from gateway.datasets import get_dataset
from gateway.db import transaction
from gateway.errors import NotFound
from gateway.ingest import IngestOutcome, Upload, ingest_upload
from gateway.lineage import Actor
from gateway.models import AssetState

CLI = Actor("cli", "ingest")
Progress = Callable[[int, int], None]


@dataclass
class IngestSummary:
    new: int = 0
    duplicates: int = 0
    rejected: list[IngestOutcome] = field(default_factory=list)
    outcomes: list[IngestOutcome] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"imported {self.new} new, {self.duplicates} already present, "
            f"{len(self.rejected)} rejected"
        ]
        reasons = Counter(o.error["code"] for o in self.rejected if o.error)
        lines += [f"  rejected {n} x {code}" for code, n in reasons.most_common()]
        lines += [f"  {o.filename}: {o.error['message']}" for o in self.rejected[:10] if o.error]
        return "\n".join(lines)


def walk_files(root: Path) -> Iterator[Path]:
    """Regular files under root in a stable order (hidden files and symlinks skipped)."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.is_symlink():
            continue
        if path.is_file():
            yield path


def ingest_directory(
    ctx: GatewayContext,
    root: Path,
    *,
    dataset_ref: str,
    progress: Progress | None = None,
    include: Callable[[Path], bool] = lambda _: True,
) -> IngestSummary:
    with transaction(ctx.engine) as session:
        dataset = get_dataset(session, dataset_ref)
    files = [p for p in walk_files(root) if include(p)]
    summary = IngestSummary()
    for done, path in enumerate(files, start=1):
        upload = Upload(filename=path.relative_to(root).as_posix(), data=path.read_bytes())
        with transaction(ctx.engine) as session:
            if session.get(type(dataset), dataset.id) is None:
                raise NotFound("the dataset disappeared during import", dataset=dataset_ref)
            outcome = ingest_upload(session, ctx, dataset, upload, actor=CLI)
        summary.outcomes.append(outcome)
        if outcome.duplicate:
            summary.duplicates += 1
        elif outcome.state == AssetState.REJECTED:
            summary.rejected.append(outcome)
        else:
            summary.new += 1
        if progress:
            progress(done, len(files))
    return summary
