"""Face settings tried on one part of the face split (bench/face_split.json), logged run by run.

    .venv/bin/python -m bench.face_tuning --part dev --variant t07:faces.threshold=0.07 ...
    .venv/bin/python -m bench.face_tuning --part holdout --variant default:

Each variant is the default policy with plates off and the named fields changed (dotted paths
into `RedactionPolicy`, e.g. `faces.margin=0.2`, `leak_check.scale=1.0`). The real engine
redacts every photo of the part (one thread, in process); `eval_redaction.py` scores the
output pixels against that part's ground truth. Every run appends one line (variant, part,
recall by bucket, over-redaction, CPU ms/image, commit) to
`bench/results/face-tuning-<date>.jsonl`, so the choice of a setting can be traced to the dev
runs that made it and the held-out part is scored only for settings chosen on dev.
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

from bench.face_cuts import CUT_SET, build_cuts
from bench.face_split import SPLIT_FILE, write_gt
from bench.redaction import REPO, machine_info
from bench.scoring import SHARED
from redaction import engine, face_growth, operators
from redaction.batch import output_name
from redaction.detectors import borders
from redaction.policy import RedactionPolicy
from redaction.registry import build_detectors
from redaction.types import ImageFormat

DEFAULT_ELLIPSE_MIN_SIDE = operators.ELLIPSE_MIN_SIDE
DEFAULT_EDGE_SNAP = engine.FACE_EDGE_SNAP
DEFAULT_WEAK = face_growth.WEAK_FACE_STEPS
BORDER_PX = 3
"""A ground-truth face box is a border face when one of its edges lies within this many pixels
of the image edge (touching or cut by it); geometry only, never a file name."""
BUCKETS = ("<20", "20-50", ">50")


def size_bucket(box: dict[str, float]) -> str:
    """The evaluator's size bucket (short side < 20, 20-50, > 50 px)."""
    side = min(box["w"], box["h"])
    return BUCKETS[0] if side < 20 else BUCKETS[1] if side <= 50 else BUCKETS[2]


def at_border(box: dict[str, float], width: int, height: int) -> bool:
    right, bottom = width - (box["x"] + box["w"]), height - (box["y"] + box["h"])
    return min(box["x"], box["y"], right, bottom) <= BORDER_PX


def _share_covered(covs: list[float]) -> float | None:
    return sum(c >= 0.9 for c in covs) / len(covs) if covs else None


def edge_buckets(
    images: list[dict[str, Any]], per_image: list[dict[str, Any]]
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """recall@0.9 and box counts by size bucket, for border faces and the rest (inner)."""
    covs: dict[str, dict[str, list[float]]] = {
        where: {b: [] for b in BUCKETS} for where in ("border", "inner")
    }
    by_file = {r["file"]: r for r in per_image}
    for entry in images:
        coverage = by_file[entry["file"]]["coverage"]
        for box, cov in zip(entry["boxes"], coverage, strict=True):
            if box["label"] != "face" or cov is None:
                continue
            where = "border" if at_border(box, entry["width"], entry["height"]) else "inner"
            covs[where][size_bucket(box)].append(cov)
    return {
        where: {
            b: {
                "boxes": len(c),
                "recall": _rounded(sum(x >= 0.9 for x in c) / len(c) if c else None),
            }
            for b, c in by_size.items()
        }
        for where, by_size in covs.items()
    }


DETECTOR_FIELDS = ("border_pad", "border_mode", "border_place")
"""Face-detector settings that are not policy fields (`CenterFaceDetector` arguments)."""


def policy_with(changes: str) -> tuple[RedactionPolicy, dict[str, Any]]:
    """The policy for a variant and the face-detector settings it changes. Not policy fields:
    `ellipse_min_side=N` sets the short side under which the operator and the leak check mask
    a face box whole instead of its ellipse; `edge_snap=S` extends grown face boxes to an
    image edge they stop short of by at most S of their side (`engine.FACE_EDGE_SNAP`);
    `border_pad=N` (or `null`), `border_mode=constant|reflect|replicate` and
    `border_place=both|end` set the face detector's context at image edges;
    `weak=S:E[/S:E...]` sets `face_growth.WEAK_FACE_STEPS` (`weak=` turns it off)."""
    data: dict[str, Any] = RedactionPolicy().model_dump(mode="json")
    data["plates"]["enabled"] = False
    operators.ELLIPSE_MIN_SIDE = DEFAULT_ELLIPSE_MIN_SIDE
    engine.FACE_EDGE_SNAP = DEFAULT_EDGE_SNAP
    face_growth.WEAK_FACE_STEPS = DEFAULT_WEAK
    detector = {"border_pad": borders.BORDER_PAD, "border_mode": borders.BORDER_MODE,
                "border_place": borders.BORDER_PLACE}  # fmt: skip
    for item in filter(None, changes.split(",")):
        path, value = item.split("=", 1)
        if path == "ellipse_min_side":
            operators.ELLIPSE_MIN_SIDE = int(value)
            continue
        if path == "edge_snap":
            engine.FACE_EDGE_SNAP = float(value)
            continue
        if path == "weak":  # weak=SCORE:EXTRA[/SCORE:EXTRA...]
            steps = [step.split(":") for step in filter(None, value.split("/"))]
            face_growth.WEAK_FACE_STEPS = tuple((float(s), float(e)) for s, e in steps)
            continue
        if path in DETECTOR_FIELDS:
            detector[path] = json.loads(value) if path == "border_pad" else value
            continue
        *parents, leaf = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[leaf] = json.loads(value)
    return RedactionPolicy.model_validate(data), detector


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def run_variant(
    name: str, changes: str, sets: list[str], part: str, args: argparse.Namespace
) -> list[dict[str, Any]]:
    policy, settings = policy_with(changes)
    detectors = build_detectors(policy, threads=1)
    for key, value in settings.items():  # the registry caches detectors: set every time
        setattr(detectors.faces, key, value)
    rows = []
    for set_name in sets:
        data_dir = args.cut_dir if set_name == CUT_SET else args.data
        gt_dir = args.cut_dir if set_name == CUT_SET else args.gt_dir
        gt_file = gt_dir / set_name / f"gt-{part}.json"
        images = json.loads(gt_file.read_text())["images"]
        out = args.out / name / part / set_name
        subprocess.run(["rm", "-rf", str(out)], check=True)
        cpu = 0.0
        for entry in images:
            data = (data_dir / set_name / entry["file"]).read_bytes()
            start = time.process_time()
            result = engine.redact_bytes(
                data, policy=policy, detectors=detectors, output_format=None
            )
            cpu += time.process_time() - start
            if result.data is not None:
                target = out / output_name(entry["file"], ImageFormat(result.format))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(result.data)
        report = out.parent / f"{set_name}.score.json"
        subprocess.run(
            [sys.executable, str(SHARED / "tools" / "eval_redaction.py"), "--gt", str(gt_file),
             "--original", str(data_dir / set_name), "--redacted", str(out),
             "--json", str(report), "--show-missed", "0"],
            check=True, capture_output=True,
        )  # fmt: skip
        score = json.loads(report.read_text())
        face = score["labels"]["face"]
        rows.append(
            {
                "variant": name,
                "part": part,
                "set": set_name,
                "images": len(images),
                "recall": {
                    "all": round(face["recall@0.9"], 3),
                    **{b: _rounded(v["recall@0.9"]) for b, v in face["buckets"].items()},
                },
                "boxes": {b: v["boxes"] for b, v in face["buckets"].items()},
                "edges": edge_buckets(images, score["per_image"]),
                "over": score["over_redaction"]["mean"],
                "cpu_ms_per_image": round(1000 * cpu / max(1, len(images)), 1),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["dev", "holdout"], required=True)
    ap.add_argument("--variant", action="append", required=True, help="name:field=value,...")
    ap.add_argument("--sets", default="faces-masks,faces-dlib")
    ap.add_argument("--data", type=Path, default=SHARED / "data")
    ap.add_argument("--gt-dir", type=Path, default=REPO / "bench" / "out" / "split")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "tuning")
    ap.add_argument("--cut-dir", type=Path, default=REPO / "bench" / "out" / "cuts",
                    help=f"where the {CUT_SET} crops are built (bench/face_cuts.py)")  # fmt: skip
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    split = json.loads(SPLIT_FILE.read_text())["sets"]
    write_gt(args.data, split, args.gt_dir)
    if CUT_SET in args.sets.split(","):
        build_cuts(args.data, split, args.cut_dir)
    machine = machine_info()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    log = args.results / f"face-tuning-{date[:10]}.jsonl"
    for variant in args.variant:
        name, changes = variant.split(":", 1)
        for row in run_variant(name, changes, args.sets.split(","), args.part, args):
            row.update(changes=changes, date=date, commit=machine["commit"],
                       dirty=machine["worktree_dirty"],
                       load=machine["loadavg_at_start"])  # fmt: skip
            with log.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            r = row["recall"]
            print(f"{name:14s} {args.part:7s} {row['set']:12s} r@0.9 {r['all']} <20 {r.get('<20')} "
                  f"20-50 {r.get('20-50')} >50 {r.get('>50')} over {row['over']:.3f} "
                  f"{row['cpu_ms_per_image']} ms", flush=True)  # fmt: skip
            cells = [f"{w} {b} {v['recall']} ({v['boxes']})"
                     for w, by in row["edges"].items() for b, v in by.items()]  # fmt: skip
            print("    " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
