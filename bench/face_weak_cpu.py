"""CPU cost of the extra growth for weak face detections, on and off interleaved image by image.

    .venv/bin/python -m bench.face_weak_cpu [--sets faces-masks,faces-dlib] [--repeat 2]
        [--steps 0.2:0.15]

For every photo, the faces-only engine (plates off, leak check on, as `face_tuning.py` runs it)
redacts the file's bytes once with `face_growth.WEAK_FACE_STEPS` set to `--steps` and once
with it empty, the order alternating from photo to photo; each call is timed with
`time.process_time()` on one onnxruntime and OpenCV thread. The growth changes only the mask
geometry, so the difference is the operator and leak check on a larger area. Writes
`bench/results/face-weak-cpu-<date>[-<tag>].md/.json` with the machine, commit and load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2

from bench.face_tuning import policy_with
from bench.redaction import REPO, machine_info
from bench.scoring import SHARED
from bench.timing import interleaved_cpu
from redaction import engine, face_growth
from redaction.registry import build_detectors

VARIANTS = ("off", "on")


def measure(
    data: Path, sets: list[str], repeat: int, steps: tuple[tuple[float, float], ...]
) -> dict[str, Any]:
    policy, _ = policy_with("")
    detectors = build_detectors(policy, threads=1)
    totals: dict[str, dict[str, float]] = {}
    counts = dict.fromkeys(sets, 0)

    def run(variant: str, raw: bytes) -> None:
        face_growth.WEAK_FACE_STEPS = steps if variant == "on" else ()
        engine.redact_bytes(raw, policy=policy, detectors=detectors, output_format=None)

    try:
        for set_name in sets:
            entries = json.loads((data / set_name / "gt.json").read_text())["images"]
            raws = [(data / set_name / entry["file"]).read_bytes() for entry in entries]
            counts[set_name] = len(raws) * repeat
            totals[set_name] = interleaved_cpu(
                counts[set_name], list(VARIANTS), lambda v, i, raws=raws: run(v, raws[i // repeat])
            )
    finally:
        face_growth.WEAK_FACE_STEPS = steps
    return {
        s: {"calls": counts[s], **{v: round(1000 * t / counts[s], 2) for v, t in by.items()}}
        for s, by in totals.items()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="faces-masks,faces-dlib")
    ap.add_argument("--data", type=Path, default=SHARED / "data")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--steps", default="0.2:0.15", help="SCORE:EXTRA[/SCORE:EXTRA...]")
    ap.add_argument("--tag", default="", help="suffix of the results file names")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    steps = tuple(
        (float(s), float(e)) for s, e in (step.split(":") for step in args.steps.split("/"))
    )
    machine = machine_info()
    results = measure(args.data, args.sets.split(","), args.repeat, steps)
    machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    out = {"date": date, "machine": machine, "steps": args.steps, "results": results}
    suffix = f"-{args.tag}" if args.tag else ""
    base = args.results / f"face-weak-cpu-{date}{suffix}"
    base.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [
        f"# Extra growth for weak faces ({args.steps}): engine CPU per image ({date})",
        "",
        f"Commit `{machine['commit']}`, load {machine['loadavg_at_start']} at start, "
        f"{machine['loadavg_at_end']} at end; faces-only engine, one thread, process time, "
        "interleaved.",
        "",
        "| set | calls | ms off | ms on | ratio |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['calls']} | {r['off']} | {r['on']} | {r['on'] / r['off']:.3f} |"
        )
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
