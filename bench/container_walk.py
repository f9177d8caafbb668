"""CPU cost of the container walk before and after the two walkers became one
(`redaction/containers.py`), interleaved in one process, timed with `time.process_time()`.

    .venv/bin/python bench/container_walk.py OLD_COMMIT [--rounds N]

For a 1920x1080 photo-like image in JPEG (baseline and progressive), PNG and WebP: the decode
path's completeness walk (`redaction.io._check_complete`) and the release gate's
`metadata_inventory`, at OLD_COMMIT (loaded from git) and in the working tree, each round
calling every variant once before the next round. Results:
`bench/results/container-walk-<date>.md`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from redaction import io as new_io  # noqa: E402
from redaction import metadata as new_metadata  # noqa: E402
from redaction.types import ImageFormat  # noqa: E402


def _old(commit: str, path: str, name: str, folder: Path) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=REPO, capture_output=True, check=True
    ).stdout
    file = folder / f"{name}.py"
    file.write_bytes(source)
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} at {commit}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _photo() -> np.ndarray:
    demo = sorted((REPO / "gateway" / "demo_photos").glob("*.jpg"))[0]
    image = cv2.imread(str(demo))
    return cv2.resize(image, (1920, 1080), interpolation=cv2.INTER_CUBIC)


def _files() -> dict[str, tuple[ImageFormat, bytes]]:
    image = _photo()
    out: dict[str, tuple[ImageFormat, bytes]] = {}
    for name, ext, fmt, params in (
        ("jpeg", ".jpg", ImageFormat.JPEG, [cv2.IMWRITE_JPEG_QUALITY, 90]),
        ("jpeg-progressive", ".jpg", ImageFormat.JPEG, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        ("png", ".png", ImageFormat.PNG, [cv2.IMWRITE_PNG_COMPRESSION, 3]),
        ("webp", ".webp", ImageFormat.WEBP, [cv2.IMWRITE_WEBP_QUALITY, 90]),
    ):
        ok, buf = cv2.imencode(ext, image, params)
        if not ok:
            raise RuntimeError(f"OpenCV could not encode {name}")
        out[name] = (fmt, bytes(buf.tobytes()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("old_commit")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        old_io = _old(args.old_commit, "redaction/io.py", "old_io", Path(scratch))
        old_md = _old(args.old_commit, "redaction/metadata.py", "old_metadata", Path(scratch))
    files = _files()
    rows = []
    for name, (fmt, data) in files.items():
        variants: dict[str, Callable[[], object]] = {
            "walk old": lambda: old_io._check_complete(data, fmt, None),  # noqa: B023
            "walk new": lambda: new_io._check_complete(data, fmt, None),  # type: ignore[arg-type]  # noqa: B023
            "inventory old": lambda: old_md.metadata_inventory(data),  # noqa: B023
            "inventory new": lambda: new_metadata.metadata_inventory(data),  # noqa: B023
        }
        spent = dict.fromkeys(variants, 0.0)
        for _ in range(args.rounds):
            for label, call in variants.items():
                start = time.process_time()
                call()
                spent[label] += time.process_time() - start
        rows.append((name, len(data), {k: v / args.rounds * 1e6 for k, v in spent.items()}))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"# Container walk, before ({args.old_commit}) and after (working tree at {commit})",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()},"
        f" {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end,"
        f" {args.rounds} interleaved rounds, CPU time per call (process_time), microseconds."
        " 1920x1080 resize of a demo photo.",
        "",
        "| file | bytes | walk old | walk new | inventory old | inventory new |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, size, us in rows:
        cells = " | ".join(f"{us[k]:.1f}" for k in us)
        lines.append(f"| {name} | {size} | {cells} |")
    text = "\n".join(lines) + "\n"
    out = REPO / "bench" / "results" / f"container-walk-{datetime.now(UTC):%Y-%m-%d}.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
