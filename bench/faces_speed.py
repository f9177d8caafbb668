"""Faces-only speed against deface and the decode+encode floor, in CPU time, tools interleaved.

    .venv/bin/python bench/faces_speed.py [--sets faces-masks,faces-dlib] [--quick N]

`bench/redaction.py` times each tool in its own pass over a set (wall clock, worker pool). On
this shared host the speed drifts up to 2x within minutes, so a ratio between two passes made
minutes apart is partly noise. Here every image goes through every tool before the next image
is read, in one process with one onnxruntime and OpenCV thread, and each call is timed with
`time.process_time()` (this process's CPU, so other load on the machine inflates it less):

- **floor**: `redaction.io` decode + metadata-free re-encode in the input's format;
- **deface**: deface 1.5.0's own `image_detect` (imageio read, CenterFace at native size,
  threshold 0.2, mask scale 1.3, ellipse blur, imageio write), as in `bench/redaction.py`;
- **gateway** variants: `redact_bytes` on the file's bytes plus writing the output, through
  the same detector registry the service uses; faces only (plates off), with the policy's leak
  check at its default `leak_check.scale` 0.5 and at full resolution (1.0); and the fp32
  CenterFace for reference.

Recall is not measured here (`bench/redaction.py` does, in pixel mode); the gateway's outputs
are not kept. Results: `bench/results/faces-speed-<date>[-quickN].md/.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.redaction import (  # noqa: E402
    Item,
    decode_encode,
    deface_centerface,
    deface_one,
    load_set,
    machine_info,
)
from bench.timing import interleaved_cpu  # noqa: E402
from redaction.engine import redact_bytes  # noqa: E402
from redaction.policy import LeakCheckPolicy, PlatePolicy, RedactionPolicy  # noqa: E402
from redaction.registry import DetectorNames, build_detectors  # noqa: E402

FACES_ONLY = RedactionPolicy(plates=PlatePolicy(enabled=False))
VARIANTS: dict[str, tuple[RedactionPolicy, DetectorNames]] = {
    "gateway-faces": (FACES_ONLY, DetectorNames()),
    "gateway-faces-leak1": (
        FACES_ONLY.model_copy(update={"leak_check": LeakCheckPolicy(scale=1.0)}),
        DetectorNames(),
    ),
    "gateway-faces-fp32": (FACES_ONLY, DetectorNames(faces="centerface-fp32")),
}

Tool = Callable[[Item, Path], None]


def gateway_tool(policy: RedactionPolicy, names: DetectorNames) -> Tool:
    detectors = build_detectors(policy, names=names, threads=1)

    def run(item: Item, out: Path) -> None:
        result = redact_bytes(item.path.read_bytes(), policy=policy, detectors=detectors,
                              output_format=None)  # fmt: skip
        if result.data is not None:
            out.write_bytes(result.data)

    return run


def floor_tool(item: Item, out: Path) -> None:
    out.write_bytes(decode_encode(item.path.read_bytes()))


def deface_tool() -> Tool:
    centerface = deface_centerface()

    def run(item: Item, out: Path) -> None:
        deface_one(centerface, item.path, out.with_suffix(item.path.suffix))

    return run


def bench_set(items: list[Item], tools: dict[str, Tool], work: Path) -> dict[str, Any]:
    failed = dict.fromkeys(tools, 0)
    names = list(tools)
    outs = {(name, i): work / f"{name}-{i}.out" for i in range(len(items)) for name in names}

    def call(name: str, index: int) -> None:
        try:
            tools[name](items[index], outs[name, index])
        except Exception:  # the peer's crashes are a result; the time still counts
            failed[name] += 1

    def after(name: str, index: int) -> None:
        outs[name, index].unlink(missing_ok=True)

    cpu = interleaved_cpu(len(items), names, call, after=after)
    ms = {name: cpu[name] * 1000 / len(items) for name in names}
    floor, deface = ms.get("floor"), ms.get("deface")
    return {
        name: {
            "cpu_ms_per_image": round(ms[name], 2),
            "x_floor": round(ms[name] / floor, 2) if floor else None,
            "x_deface": round(ms[name] / deface, 3) if deface else None,
            "deface_speed_over_this": round(deface / ms[name], 3) if deface else None,
            "failed": failed[name],
        }
        for name in names
    }


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# Faces-only speed, CPU time, tools interleaved ({report['date']})",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, onnxruntime "
        f"{m['onnxruntime']}, OpenCV {m['opencv']}; load average at start "
        f"{m['loadavg_at_start']}",
        f"- commit: {m['commit']}{' (dirty tree)' if m['worktree_dirty'] else ''}",
        f"- images: {report['images']}; one process, one thread; `bench/faces_speed.py`",
        "",
        "| set | tool | CPU ms/img | x floor | x deface's time | deface's time / this | failed |",
        "|---|---|---|---|---|---|---|",
    ]
    for set_name, rows in report["sets"].items():
        for tool, row in rows.items():
            lines.append(
                f"| {set_name} | {tool} | {row['cpu_ms_per_image']:.2f} | {row['x_floor']} | "
                f"{row['x_deface']} | {row['deface_speed_over_this']} | {row['failed']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--sets", default="faces-masks,faces-dlib")
    ap.add_argument("--quick", type=int, metavar="N", help="first N images per set")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    ap.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"gateway variants, of {', '.join(VARIANTS)}"
    )
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"no sample data at {args.data} (not part of the project)", file=sys.stderr)
        return 2
    cv2.setNumThreads(1)
    tools: dict[str, Tool] = {"floor": floor_tool, "deface": deface_tool()}
    wanted = [v for v in args.variants.split(",") if v]
    unknown = [v for v in wanted if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants: {', '.join(unknown)}")
    tools |= {name: gateway_tool(*VARIANTS[name]) for name in wanted}
    report: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine_info(),
        "images": {},
        "sets": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for set_name in args.sets.split(","):
            items, _ = load_set(args.data / set_name, args.quick)
            bench_set(items[:2], tools, Path(tmp))  # warm-up: models loaded, caches filled
            report["images"][set_name] = len(items)
            report["sets"][set_name] = bench_set(items, tools, Path(tmp))
            print(json.dumps({set_name: report["sets"][set_name]}, indent=1), flush=True)
    stem = f"faces-speed-{report['date']}" + (f"-quick{args.quick}" if args.quick else "")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.results / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
