"""Redact a directory tree: the engine behind `privacy-gateway redact INPUT_DIR OUTPUT_DIR`.

Every regular file under the input directory is considered; its format is decided by content
(magic bytes), never by extension, and anything unsupported is reported `rejected`. Supported
images are redacted in isolated worker processes (see `isolation`), by default one per core.

Outputs mirror the input tree. An image is re-encoded in its own format (JPEG as JPEG, PNG as
PNG, WebP as WebP, TIFF as TIFF, with no metadata). The relative path is kept when its extension
names that format; otherwise the extension is replaced by the format's own, so a PNG stored as
`x.jpg` comes out as `x.png` (a file name never lies about its content). Quarantined and
rejected files are never written: the regions file says why, and a stale output from an earlier
run at the same path is removed so that the output tree reflects this run only.

The regions file holds one JSON line per input file, in path order:
`{"file", "output", "status", "reasons", "regions": [{"label", "x", "y", "w", "h", "score",
"detector"}]}` with `output` null unless released.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from redaction.errors import ImageTooLarge, InputError, RedactionError
from redaction.io import sniff_format
from redaction.isolation import RedactionWorkerPool, WorkerOutcome
from redaction.policy import RedactionPolicy
from redaction.registry import DetectorNames
from redaction.types import ImageFormat

Progress = Callable[[int, int], None]
"""Called as progress(done, total) after each file."""

_EXTENSIONS: dict[ImageFormat, tuple[str, ...]] = {
    ImageFormat.JPEG: (".jpg", ".jpeg", ".jpe"),
    ImageFormat.PNG: (".png",),
    ImageFormat.WEBP: (".webp",),
    ImageFormat.TIFF: (".tif", ".tiff"),
}


class BatchError(RedactionError):
    code = "invalid-batch"


@dataclass(frozen=True, slots=True)
class BatchSummary:
    total: int
    released: int
    quarantined: int
    rejected: int
    elapsed_seconds: float
    reasons: dict[str, int] = field(default_factory=dict)
    """How many files each reason code stopped."""
    regions_out: Path | None = None


_Pending = Future[WorkerOutcome] | WorkerOutcome


@dataclass(frozen=True, slots=True)
class _Entry:
    path: Path
    relative: str
    pending: _Pending


def output_name(relative: str, fmt: ImageFormat) -> str:
    """Keep the name when its extension names `fmt`, else swap in the format's extension."""
    path = Path(relative)
    if path.suffix.lower() in _EXTENSIONS[fmt]:
        return relative
    return path.with_suffix(_EXTENSIONS[fmt][0]).as_posix()


def _check_dirs(input_dir: Path, output_dir: Path) -> tuple[Path, Path]:
    src, dst = input_dir.resolve(), output_dir.resolve()
    if not src.is_dir():
        raise BatchError(f"input directory {input_dir} does not exist", path=str(input_dir))
    if src == dst or src.is_relative_to(dst):
        raise BatchError(
            "the output directory must not be the input directory or contain it "
            "(outputs could overwrite originals)",
            input=str(input_dir),
            output=str(output_dir),
        )
    return src, dst


def input_files(input_dir: Path, *, skip: Path | None = None) -> Iterator[Path]:
    """Every file under `input_dir`, not following directory symlinks, and leaving out `skip`
    (an output directory inside the input directory)."""
    for root, dirs, files in os.walk(input_dir):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if skip is None or (here / d).resolve() != skip)
        yield from (here / name for name in sorted(files))


def _rejected(error: InputError) -> WorkerOutcome:
    return WorkerOutcome.failure(error, status="rejected")


def _start(path: Path, pool: RedactionWorkerPool, policy: RedactionPolicy) -> _Pending:
    """Check a file cheaply in this process, then hand it to a worker."""
    if path.is_symlink() or not path.is_file():
        return _rejected(InputError("not a regular file (symlinks are not followed)"))
    try:
        size = path.stat().st_size
        if size > policy.limits.max_bytes:
            raise ImageTooLarge(
                f"The file is {size} bytes; the limit is {policy.limits.max_bytes}.",
                size_bytes=size,
                max_bytes=policy.limits.max_bytes,
            )
        data = path.read_bytes()
        sniff_format(data)
    except InputError as exc:
        return _rejected(exc)
    except OSError as exc:
        return _rejected(InputError(f"cannot read the file: {exc.strerror or exc}"))
    return pool.submit(data)


def _finish(entry: _Entry, dst: Path) -> dict[str, Any]:
    """Write a released image (atomically), remove a stale one otherwise; the JSONL record."""
    pending = entry.pending
    outcome = pending.result() if isinstance(pending, Future) else pending
    written: str | None = None
    target_name = entry.relative
    if outcome.output_format:
        target_name = output_name(entry.relative, ImageFormat(outcome.output_format))
    target = dst / target_name
    if outcome.status == "released" and outcome.data:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(outcome.data)
        partial.replace(target)
        written = target_name
    elif target.is_file() and not target.is_symlink():
        target.unlink()  # a stale output from an earlier run must not look released
    return {
        "file": entry.relative,
        "output": written,
        "status": outcome.status if written or outcome.status != "released" else "quarantined",
        "reasons": list(outcome.reasons),
        "regions": [_region(r) for r in outcome.regions],
    }


def _region(region: dict[str, Any]) -> dict[str, Any]:
    keys = ("label", "x", "y", "w", "h", "score", "detector")
    return {k: region[k] for k in keys if k in region}


def redact_directory(
    input_dir: Path,
    output_dir: Path,
    *,
    policy: RedactionPolicy,
    workers: int | None = None,
    regions_out: Path | None = None,
    progress: Progress | None = None,
    detector_names: DetectorNames | None = None,
    initializer: Callable[[], None] | None = None,
) -> BatchSummary:
    """Redact every image under `input_dir` into `output_dir`; see the module docstring."""
    start = time.perf_counter()
    src, dst = _check_dirs(input_dir, output_dir)
    found = input_files(src, skip=dst if dst.is_relative_to(src) else None)
    files = sorted(found, key=lambda p: p.relative_to(src).as_posix())
    workers = workers or os.cpu_count() or 1
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    dst.mkdir(parents=True, exist_ok=True)
    sink: IO[str] | None = None
    with RedactionWorkerPool(
        policy=policy,
        workers=workers,
        timeout_seconds=policy.timeout_seconds,
        output_format=None,
        detector_names=detector_names,
        initializer=initializer,
    ) as pool:
        try:
            if regions_out is not None:
                regions_out.parent.mkdir(parents=True, exist_ok=True)
                sink = regions_out.open("w", encoding="utf-8")
            window: deque[_Entry] = deque()
            queued = iter(files)
            for done in range(1, len(files) + 1):
                while len(window) < 2 * workers and (path := next(queued, None)) is not None:
                    relative = path.relative_to(src).as_posix()
                    window.append(_Entry(path, relative, _start(path, pool, policy)))
                record = _finish(window.popleft(), dst)
                counts[record["status"]] += 1
                reasons.update(str(r.get("code")) for r in record["reasons"])
                if sink is not None:
                    sink.write(json.dumps(record, sort_keys=True) + "\n")
                if progress is not None:
                    progress(done, len(files))
        finally:
            if sink is not None:
                sink.close()
    return BatchSummary(
        total=len(files),
        released=counts["released"],
        quarantined=counts["quarantined"],
        rejected=counts["rejected"],
        elapsed_seconds=time.perf_counter() - start,
        reasons=dict(reasons),
        regions_out=regions_out,
    )
