"""The leak check's own view: RetinaFace alone on the unredacted photos of one part of the face
split, at several input sizes, scored by the pixel evaluator, with CPU time per photo.

    .venv/bin/python -m bench.leak_view --part dev --resize 0.5,0.45,0.4

The leak check runs RetinaFace on the redacted output; whatever the primary detector masked is
no longer a face there, so its recall inside the pipeline says little about how much it can
still see. Here it is the only detector: each box it reports (threshold `leak_check.
face_threshold`) is grown by the face margin and masked, and `eval_redaction.py` scores the
pixels by size bucket, for each resize factor (`leak_check.scale`). `fillR`: the largest
factor >= R at which the photo still fits the input R pads to (sides rounded up to 32 px), so
the network's cost stays that of R and the padding holds pixels instead of zeros
(`retinaface.fill_factor`, what the leak check does). One line per factor and set is appended to
`bench/results/leak-view-<date>.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2

from bench.face_split import SPLIT_FILE, write_gt
from bench.redaction import REPO, machine_info
from bench.scoring import SHARED
from redaction import engine, io
from redaction.batch import output_name
from redaction.detectors.retinaface import LEAK_CHECK_SCALES, RetinaFaceDetector
from redaction.policy import RedactionPolicy


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def run_sizing(sizing: str, set_name: str, part: str, args: argparse.Namespace) -> dict[str, Any]:
    fill = sizing.startswith("fill")
    resize = float(sizing.removeprefix("fill"))
    policy = RedactionPolicy()
    detector = RetinaFaceDetector(
        threshold=policy.leak_check.face_threshold, scales=LEAK_CHECK_SCALES, threads=1,
        resize=resize, fill=fill,
    )  # fmt: skip
    gt_file = args.gt_dir / set_name / f"gt-{part}.json"
    images = json.loads(gt_file.read_text())["images"]
    out = args.out / sizing / part / set_name
    subprocess.run(["rm", "-rf", str(out)], check=True)
    cpu = 0.0
    for entry in images:
        image = io.decode_image((args.data / set_name / entry["file"]).read_bytes(),
                                limits=policy.limits)  # fmt: skip
        start = time.process_time()
        found = detector.detect(image.pixels)
        cpu += time.process_time() - start
        pixels, _ = engine._mask(image.pixels, tuple(found), policy)
        target = out / output_name(entry["file"], image.source_format)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(io.encode_image(pixels, fmt=image.source_format))
    report = out.parent / f"{set_name}.score.json"
    subprocess.run(
        [sys.executable, str(SHARED / "tools" / "eval_redaction.py"), "--gt", str(gt_file),
         "--original", str(args.data / set_name), "--redacted", str(out),
         "--json", str(report), "--show-missed", "0"],
        check=True, capture_output=True,
    )  # fmt: skip
    face = json.loads(report.read_text())["labels"]["face"]
    return {
        "sizing": sizing,
        "part": part,
        "set": set_name,
        "images": len(images),
        "recall": {
            "all": round(face["recall@0.9"], 3),
            **{b: _rounded(v["recall@0.9"]) for b, v in face["buckets"].items()},
        },
        "boxes": {b: v["boxes"] for b, v in face["buckets"].items()},
        "cpu_ms_per_image": round(1000 * cpu / max(1, len(images)), 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["dev", "holdout"], required=True)
    ap.add_argument("--resize", default="0.5", help="comma-separated factors R or fillR")
    ap.add_argument("--sets", default="faces-masks")
    ap.add_argument("--data", type=Path, default=SHARED / "data")
    ap.add_argument("--gt-dir", type=Path, default=REPO / "bench" / "out" / "split")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "leak-view")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    write_gt(args.data, json.loads(SPLIT_FILE.read_text())["sets"], args.gt_dir)
    machine = machine_info()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    log = args.results / f"leak-view-{date[:10]}.jsonl"
    for set_name in args.sets.split(","):
        for sizing in args.resize.split(","):
            row = run_sizing(sizing, set_name, args.part, args)
            row.update(date=date, commit=machine["commit"], dirty=machine["worktree_dirty"],
                       load=machine["loadavg_at_start"])  # fmt: skip
            with log.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            r = row["recall"]
            print(f"{sizing:8s} {args.part:7s} {set_name:12s} r@0.9 {r['all']} <20 {r.get('<20')} "
                  f"20-50 {r.get('20-50')} >50 {r.get('>50')} {row['cpu_ms_per_image']} ms",
                  flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
