"""Folder import for the CLI: one transaction per file, so a killed run loses nothing and a
re-run adds nothing twice (assets are keyed by a keyed content digest)."""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import NotFound
from gateway.core.models import AssetState
from gateway.datasets import get_dataset
from gateway.ingest import IngestOutcome, Upload, ingest_upload
from gateway.lineage import Actor

CLI = Actor("cli", "ingest")
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry of the folder that was not imported, and why (every one is named)."""

    path: str  # relative to the imported folder
    reason: str


@dataclass
class IngestSummary:
    new: int = 0
    duplicates: int = 0
    rejected: list[IngestOutcome] = field(default_factory=list)
    outcomes: list[IngestOutcome] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    resumed: int = 0  # objects an earlier run took (object-storage import), not read again

    def describe(self) -> str:
        lines = [
            f"imported {self.new} new, {self.duplicates} already present, "
            f"{len(self.rejected)} rejected, {len(self.skipped)} skipped"
        ]
        if self.resumed:
            lines.append(f"  {self.resumed} taken by an earlier run (not read again)")
        reasons = Counter(o.error["code"] for o in self.rejected if o.error)
        lines += [f"  rejected {n} x {code}" for code, n in reasons.most_common()]
        lines += [f"  {o.filename}: {o.error['message']}" for o in self.rejected[:10] if o.error]
        lines += [f"  skipped {s.path}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    return "not a regular file"


def scan_folder(root: Path) -> tuple[list[Path], list[Skipped]]:
    """Regular files under root in a stable order, and every entry left out with its reason:
    hidden files and folders, symbolic links (never followed), FIFOs, sockets, devices and
    folders that cannot be listed."""
    files: list[Path] = []
    skipped: list[Skipped] = []

    def visit(folder: Path) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            rel = folder.relative_to(root).as_posix()
            skipped.append(Skipped(rel, f"folder cannot be read ({exc.strerror})"))
            return
        for entry in entries:
            path = Path(entry.path)
            rel = path.relative_to(root).as_posix()
            if entry.name.startswith("."):
                what = "folder" if entry.is_dir(follow_symlinks=False) else "file"
                skipped.append(Skipped(rel, f"hidden {what}"))
            elif entry.is_symlink():
                skipped.append(Skipped(rel, "symbolic link (links are not followed)"))
            elif entry.is_dir(follow_symlinks=False):
                visit(path)
            elif entry.is_file(follow_symlinks=False):
                files.append(path)
            else:
                mode = entry.stat(follow_symlinks=False).st_mode
                skipped.append(Skipped(rel, _special_kind(mode)))

    visit(root)
    return files, skipped


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
    found, skipped = scan_folder(root)
    files = [p for p in found if include(p)]
    summary = IngestSummary(skipped=skipped)
    for done, path in enumerate(files, start=1):
        name = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
        except OSError as exc:  # vanished or unreadable since the scan: named, not fatal
            summary.skipped.append(Skipped(name, f"cannot be read ({exc.strerror})"))
            continue
        upload = Upload(filename=name, data=data)
        with transaction(ctx.engine) as session:
            if session.get(type(dataset), dataset.id) is None:
                raise NotFound("the dataset disappeared during import", dataset=dataset_ref)
            outcome = ingest_upload(session, ctx, dataset, upload, actor=CLI)
        count_outcome(summary, outcome)
        if progress:
            progress(done, len(files))
    return summary


def count_outcome(summary: IngestSummary, outcome: IngestOutcome) -> None:
    summary.outcomes.append(outcome)
    if outcome.duplicate:
        summary.duplicates += 1
    elif outcome.state == AssetState.REJECTED:
        summary.rejected.append(outcome)
    else:
        summary.new += 1
