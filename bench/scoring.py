"""Scoring shared by the detector recall scripts: run `eval_redaction.py` on a regions file and
summarise its JSON for one label."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# ../shared beside the clone; BENCH_SHARED points elsewhere (a git worktree one level deeper).
SHARED = Path(os.environ.get("BENCH_SHARED") or Path(__file__).resolve().parents[2] / "shared")
EVAL = SHARED / "tools" / "eval_redaction.py"


def score(folder: Path, regions: Path, *, missed: int) -> str:
    """The evaluation tool's text report; its JSON goes next to `regions` (.score.json)."""
    result = subprocess.run(
        [
            sys.executable,
            str(EVAL),
            "--gt",
            str(folder / "gt.json"),
            "--regions",
            str(regions),
            "--show-missed",
            str(missed),
            "--json",
            str(regions.with_suffix(".score.json")),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def summary(score_json: Path, label: str, *, over_digits: int = 3) -> str:
    """recall@0.9 overall and by size bucket for `label`, over-redaction mean and p95."""
    data = json.loads(score_json.read_text())
    scored = data["labels"].get(label, {})
    buckets = scored.get("buckets", {})
    parts = [f"r@0.9 {scored.get('recall@0.9', 0):.3f}"]
    for name in ("<20", "20-50", ">50"):
        value = buckets.get(name, {}).get("recall@0.9")
        parts.append(f"{name} {'-' if value is None else f'{value:.3f}'}")
    over = data["over_redaction"]
    parts.append(f"over {over['mean']:.{over_digits}f} (p95 {over['p95']:.{over_digits}f})")
    return "  ".join(parts)
