"""CPU cost of the face detector's border context, the two settings interleaved image by image.

    .venv/bin/python -m bench.face_border_cpu [--sets faces-masks,faces-dlib] [--repeat 2]

For every photo, the faces-only engine (plates off, leak check on, as `face_tuning.py` runs it)
redacts the file's bytes once with the detector's border context as configured
(`borders.BORDER_PAD`, `BORDER_MODE`, `BORDER_PLACE`) and once without it
(`border_pad=None`, the network's own zero padding), the order alternating from photo to
photo; each call is timed with `time.process_time()` on one onnxruntime and OpenCV thread.
The CenterFace stage alone is timed the same way. Writes
`bench/results/face-border-cpu-<date>[-<tag>].md/.json` with the machine, commit and load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.face_tuning import policy_with
from bench.redaction import REPO, machine_info
from bench.scoring import SHARED
from redaction import engine
from redaction.detectors.faces import CenterFaceDetector
from redaction.registry import build_detectors

VARIANTS = ("without", "with")


def _settings(variant: str, faces: CenterFaceDetector, default: dict[str, Any]) -> None:
    faces.border_pad = None if variant == "without" else default["border_pad"]
    faces.border_mode = default["border_mode"]
    faces.border_place = default["border_place"]


def measure(data: Path, sets: list[str], repeat: int) -> dict[str, Any]:
    policy, default = policy_with("")
    detectors = build_detectors(policy, threads=1)
    faces = detectors.faces
    if not isinstance(faces, CenterFaceDetector):
        raise SystemExit(f"the faces detector is {type(faces).__name__}, not CenterFace")
    totals = {s: {v: {"engine": 0.0, "detector": 0.0} for v in VARIANTS} for s in sets}
    counts = dict.fromkeys(sets, 0)
    for set_name in sets:
        entries = json.loads((data / set_name / "gt.json").read_text())["images"]
        for n, entry in enumerate(entries):
            raw = (data / set_name / entry["file"]).read_bytes()
            pixels = np.asarray(cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR))
            order = VARIANTS if n % 2 == 0 else VARIANTS[::-1]
            for _ in range(repeat):
                for variant in order:
                    _settings(variant, faces, default)
                    start = time.process_time()
                    engine.redact_bytes(raw, policy=policy, detectors=detectors, output_format=None)
                    middle = time.process_time()
                    faces.boxes(pixels)
                    end = time.process_time()
                    totals[set_name][variant]["engine"] += middle - start
                    totals[set_name][variant]["detector"] += end - middle
            counts[set_name] += repeat
    _settings("with", faces, default)
    return {
        s: {
            "calls": counts[s],
            **{
                v: {k: round(1000 * t / counts[s], 2) for k, t in by.items()}
                for v, by in totals[s].items()
            },
        }
        for s in sets
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", default="faces-masks,faces-dlib")
    ap.add_argument("--data", type=Path, default=SHARED / "data")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--tag", default="", help="suffix of the results file names")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    machine = machine_info()
    results = measure(args.data, args.sets.split(","), args.repeat)
    machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    out = {"date": date, "machine": machine, "results": results}
    suffix = f"-{args.tag}" if args.tag else ""
    base = args.results / f"face-border-cpu-{date}{suffix}"
    base.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    lines = [
        f"# Face border context: CPU per image ({date})",
        "",
        f"Commit `{machine['commit']}`, load {machine['loadavg_at_start']} at start, "
        f"{machine['loadavg_at_end']} at end; one thread, process time, interleaved.",
        "",
        "| set | calls | engine without | engine with | ratio | CenterFace without "
        "| CenterFace with | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        a, b = r["without"], r["with"]
        lines.append(
            f"| {name} | {r['calls']} | {a['engine']} | {b['engine']} | "
            f"{b['engine'] / a['engine']:.3f} | {a['detector']} | {b['detector']} | "
            f"{b['detector'] / a['detector']:.3f} |"
        )
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
