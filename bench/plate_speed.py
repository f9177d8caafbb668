"""Plate pass and whole default-policy redaction per image, in CPU time, runtimes interleaved.

    .venv/bin/python bench/plate_speed.py [--sets plates-dashcam,plates-openalpr] [--quick N]
        [--runtimes onnxruntime,openvino] [--no-engine] [--plain]

Every image goes through every variant before the next image is read (order rotated), in one
process with one inference and OpenCV thread, each call timed with `time.process_time()`:

- `plates-<runtime>`: `PlateDetector.detect` alone with the text detector on that runtime
  (the recogniser is on onnxruntime in all of them);
- `engine-<runtime>`: `redact_bytes` with the default policy (faces, plates, leak check) on the
  file's bytes, the plate detector on that runtime;
- with `--plain`, `plates-openvino-plain` / `engine-openvino-plain` first: OpenVINO on the
  detector file as it is, without the exact graph rewrite (`redaction/detectors/db_graph.py`).

It also counts the images whose plate boxes differ from the first runtime's (same boxes means
same recall; `bench/plate_recall.py` scores recall). Results:
`bench/results/plates-speed-<date>[-quickN].md/.json`. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.redaction import machine_info  # noqa: E402
from bench.scoring import SHARED  # noqa: E402
from bench.timing import interleaved_cpu  # noqa: E402
from redaction.detectors.ocr import TextDetectorModel  # noqa: E402
from redaction.detectors.plates import PlateDetector  # noqa: E402
from redaction.detectors.runtime import RUNTIMES, Runtime  # noqa: E402
from redaction.engine import redact_bytes  # noqa: E402
from redaction.policy import RedactionPolicy  # noqa: E402
from redaction.registry import build_detectors  # noqa: E402

Boxes = list[tuple[int, int, int, int]]


def variants(
    runtimes: list[Runtime], engine: bool, plain: bool = False
) -> dict[str, Callable[[Path], Boxes]]:
    policy = RedactionPolicy()
    base = build_detectors(policy, threads=1)
    tools: dict[str, Callable[[Path], Boxes]] = {}
    graphs = [(runtime, True) for runtime in runtimes]
    if plain:
        graphs = [(r, False) for r in runtimes if r.startswith("openvino")] + graphs
    for runtime, exact in graphs:
        text = TextDetectorModel(
            threads=1, box_threshold=policy.plates.threshold, runtime=runtime, exact_graph=exact
        )
        plates = PlateDetector(
            threshold=policy.plates.threshold, threads=1, runtime=runtime, text_detector=text
        )
        runtime = cast(Runtime, runtime if exact else f"{runtime}-plain")

        def plate_tool(path: Path, det: PlateDetector = plates) -> Boxes:
            regions = det.detect(cv2.imread(str(path), cv2.IMREAD_COLOR))
            return sorted((r.x, r.y, r.w, r.h) for r in regions)

        tools[f"plates-{runtime}"] = plate_tool
        if engine:
            detectors = dataclasses.replace(base, plates=plates)

            def engine_tool(path: Path, dets: Any = detectors) -> Boxes:
                redact_bytes(path.read_bytes(), policy=policy, detectors=dets, output_format=None)
                return []

            tools[f"engine-{runtime}"] = engine_tool
    return tools


def bench_set(files: list[Path], tools: dict[str, Callable[[Path], Boxes]]) -> dict[str, Any]:
    names = list(tools)
    differ = dict.fromkeys(names, 0)
    reference = next(n for n in names if n.startswith("plates-"))
    found: list[dict[str, Boxes]] = [{} for _ in files]

    def call(name: str, index: int) -> None:
        found[index][name] = tools[name](files[index])

    cpu = interleaved_cpu(len(files), names, call)
    for boxes in found:
        for name in names:
            if name.startswith("plates-") and boxes[name] != boxes[reference]:
                differ[name] += 1
    first = {kind: next(n for n in names if n.startswith(kind)) for kind in ("plates", "engine")
             if any(n.startswith(kind) for n in names)}  # fmt: skip
    return {
        name: {
            "cpu_ms_per_image": round(cpu[name] * 1000 / len(files), 1),
            "x_first": round(cpu[name] / cpu[first[name.split("-")[0]]], 3),
            "images_with_other_plate_boxes": differ[name] if name.startswith("plates-") else None,
        }
        for name in names
    }


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# Plate pass speed by inference runtime, CPU time, interleaved ({report['date']})",
        "",
        f"- machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, onnxruntime "
        f"{m['onnxruntime']}, openvino {report['openvino']}, OpenCV {m['opencv']}; load average "
        f"at start {m['loadavg_at_start']}, at end {report['loadavg_at_end']}",
        f"- commit: {m['commit']}{' (dirty tree)' if m['worktree_dirty'] else ''}",
        f"- images: {report['images']}; one process, one thread; `bench/plate_speed.py`",
        "",
        "| set | variant | CPU ms/img | x first variant | images whose plate boxes differ |",
        "|---|---|---|---|---|",
    ]
    for set_name, rows in report["sets"].items():
        for tool, row in rows.items():
            other = row["images_with_other_plate_boxes"]
            lines.append(
                f"| {set_name} | {tool} | {row['cpu_ms_per_image']:.1f} | {row['x_first']} | "
                f"{'-' if other is None else other} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", default="plates-dashcam,plates-openalpr")
    ap.add_argument("--quick", type=int, default=None, help="every k-th image, k chosen for N")
    ap.add_argument("--runtimes", default="onnxruntime,openvino")
    ap.add_argument("--no-engine", action="store_true")
    ap.add_argument(
        "--plain",
        action="store_true",
        help="also OpenVINO on the unchanged detector graph (`-plain`, first), no exact rewrite",
    )
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--tag", default="", help="suffix of the results file names")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    runtimes = [cast(Runtime, r) for r in args.runtimes.split(",")]
    if any(r not in RUNTIMES for r in runtimes):
        ap.error(f"runtimes are among {RUNTIMES}")
    import openvino

    machine = machine_info()
    tools = variants(runtimes, engine=not args.no_engine, plain=args.plain)
    sets: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for set_name in args.sets.split(","):
        folder = SHARED / "data" / set_name
        entries = json.loads((folder / "gt.json").read_text())["images"]
        files = [folder / e["file"] for e in entries]
        if args.quick:
            files = files[:: max(1, len(files) // args.quick)][: args.quick]
        counts[set_name] = len(files)
        sets[set_name] = bench_set(files, tools)
        print(set_name, json.dumps(sets[set_name]), flush=True)
    report = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine,
        "openvino": openvino.__version__,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "images": counts,
        "sets": sets,
    }
    stem = f"plates-speed-{report['date']}" + (f"-quick{args.quick}" if args.quick else "")
    stem += f"-{args.tag}" if args.tag else ""
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
