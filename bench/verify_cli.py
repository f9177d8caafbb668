"""`privacy-gateway verify BUNDLE` as a user runs it: wall time, CPU time and the number of
modules loaded, for two source trees (before/after a change) interleaved in one run.

    .venv/bin/python bench/verify_cli.py --before /work/main --after . [--records 1000] [--runs 5]

Each tree runs `python -c "from gateway.cli import main; main(argv)"` (what the console script
and `python -m gateway` do) in a fresh interpreter with that tree first on PYTHONPATH, on one
bundle made with the after tree (the bundle format is the same in both). Module count:
`len(sys.modules)` at exit, and the lines of `-X importtime`. Results go to
bench/results/verify-cli-DATE-RECORDS.{json,md} (machine, date, commits, load average).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('MODULES', len(sys.modules), file=sys.stderr))\n"
    "from gateway.cli import main\n"
    "main(sys.argv[1:])\n"
)
MAKE_BUNDLE = """
import sys
from pathlib import Path
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.lineage import Actor, append
from gateway.lineage.bundle import BundleFilter, export_bundle
from gateway.lineage.service import check_export_residency
from gateway.lineage.signing import ensure_signing_key
from gateway.core.settings import Settings

out, n = Path(sys.argv[1]), int(sys.argv[2])
ctx = GatewayContext.open(Settings(data_dir=out.parent / "data"), create_master_key=True,
                          migrate_schema=True)
with transaction(ctx.engine) as s:
    for i in range(n):
        append(s, action="bench.event", entity_type="asset", entity_id=f"e{i % 50}",
               actor=Actor("system", "bench"), now=ctx.clock(), region="eu-de",
               inputs={"original_keyed_digest": f"{i:064x}"}, parameters={"i": i})
with transaction(ctx.engine) as s:
    cleared = check_export_residency(ctx, s, BundleFilter(), target_region="eu-de",
                                     actor=Actor("system", "bench"))
    export_bundle(ctx, s, out, BundleFilter(), clearances=cleared, to_region="eu-de")
    print(ensure_signing_key(ctx, s).fingerprint)
ctx.close()
"""


def _env(tree: Path) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(tree.resolve())}


def _commit(tree: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    )
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return done.stdout.strip() + ("+changes" if dirty else "")


def _once(tree: Path, argv: list[str], cwd: Path) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env=_env(tree),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or "lineage bundle intact" not in done.stdout:
        raise SystemExit(f"verify failed with {tree}: {done.stderr[-2000:]}")
    modules = int(done.stderr.rsplit("MODULES", 1)[1].split()[0])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "modules": modules}


def _importtime(tree: Path, argv: list[str], cwd: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE, *argv],
        env=_env(tree),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [line for line in done.stderr.splitlines() if line.startswith("import time:")][1:]
    names = {row.rsplit("|", 1)[1].strip() for row in rows}
    heavy = ["sqlmodel", "sqlalchemy", "fastapi", "starlette", "pydantic", "yaml", "cryptography"]
    return {"imported": len(rows), "heavy_loaded": [h for h in heavy if h in names]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=HERE.parent)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    trees = {"before": args.before, "after": args.after}
    result: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "commits": {k: _commit(v) for k, v in trees.items()},
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "records": args.records,
        "runs": args.runs,
    }
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle.jsonl"
        made = subprocess.run(
            [sys.executable, "-c", MAKE_BUNDLE, str(bundle), str(args.records)],
            env=_env(args.after),
            capture_output=True,
            text=True,
            check=True,
        )
        argv = ["verify", str(bundle), "--fingerprint", made.stdout.strip()]
        samples: dict[str, list[dict[str, float]]] = {k: [] for k in trees}
        for tree in trees.values():  # warm the file cache and .pyc files
            _once(tree, argv, Path(tmp))
        for _ in range(args.runs):
            for name, tree in trees.items():
                samples[name].append(_once(tree, argv, Path(tmp)))
        variants = {}
        for name, tree in trees.items():
            runs = samples[name]
            variants[name] = {
                "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 3),
                "cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs), 3),
                "modules_at_exit": int(statistics.median(r["modules"] for r in runs)),
                "importtime": _importtime(tree, argv, Path(tmp)),
                "runs": runs,
            }
    result["variants"] = variants
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    stamp = datetime.now(UTC).date().isoformat()
    out = HERE / "results" / f"verify-cli-{stamp}-{args.records}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(_markdown(result))
    sys.stdout.write(_markdown(result))


def _markdown(result: dict[str, object]) -> str:
    variants = result["variants"]
    assert isinstance(variants, dict)  # noqa: S101
    lines = [
        f"# `privacy-gateway verify BUNDLE` {result['date']}",
        "",
        f"Machine: {result['machine']}; load average {result['load_average_at_start']} at the "
        f"start, {result['load_average_at_end']} at the end (the 2 cores are shared).",
        f"Commits: {result['commits']}. Bundle: {result['records']} records, complete chain. "
        f"Medians of {result['runs']} runs, before and after interleaved.",
        "",
        "| tree | wall s | CPU s | modules at exit | `-X importtime` imports | heavy loaded |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in variants.items():
        lines.append(
            f"| {name} | {v['wall_s_median']} | {v['cpu_s_median']} | {v['modules_at_exit']} | "
            f"{v['importtime']['imported']} | {', '.join(v['importtime']['heavy_loaded'])} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
