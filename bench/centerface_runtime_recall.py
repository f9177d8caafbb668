"""Face recall of the primary detector with CenterFace on another runtime.

    .venv/bin/python -m bench.centerface_runtime_recall --variant ort-int8 --variant ov-int8-static

The real `CenterFaceDetector` as the registry builds it for the default policy (threshold,
NMS, chin, border context), its network call swapped for the variant's; every photo of the
full faces-masks and faces-dlib sets; each region grown as the engine grows it
(`engine.grow`, default policy) and claimed as the operator masks it (its ellipse, or the box
when `operators._ellipse_fits` says so), scored by `eval_redaction.py --regions`. Besides
recall@0.9 by size bucket, lists the faces one variant covers >= 0.9 and the first variant
does not (and the reverse), so that new misses can be looked at. Writes
`bench/results/centerface-runtime-recall-<date>[-<tag>].json`.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.centerface_runtimes import load_models
from bench.face_recall import ellipse_polygon
from bench.face_tuning import size_bucket
from bench.redaction import REPO, machine_info
from bench.scoring import SHARED, score
from redaction import engine, operators
from redaction.detectors.faces import CenterFaceDetector
from redaction.policy import RedactionPolicy
from redaction.types import Region

SETS = ("faces-masks", "faces-dlib")


def claim(region: Region, width: int, height: int) -> dict[str, Any]:
    if operators._ellipse_fits(region, width, height):
        return {"label": "face", "polygon": ellipse_polygon(region)}
    return {"label": "face", "x": region.x, "y": region.y, "w": region.w, "h": region.h}


def regions_file(
    detector: CenterFaceDetector, policy: RedactionPolicy, set_dir: Path, out: Path
) -> None:
    lines = []
    for entry in json.loads((set_dir / "gt.json").read_text())["images"]:
        image = np.asarray(cv2.imread(str(set_dir / entry["file"]), cv2.IMREAD_COLOR), np.uint8)
        height, width = image.shape[:2]
        grown = [
            engine.grow(r, policy=policy, width=width, height=height)
            for r in detector.detect(image)
        ]
        claims = [claim(r, width, height) for r in grown]
        lines.append(json.dumps({"file": entry["file"], "regions": claims}))
    out.write_text("\n".join(lines) + "\n")


def face_coverage(set_dir: Path, score_json: Path) -> list[tuple[str, int, str, float]]:
    """(file, box index, size bucket, coverage) of every labelled face."""
    images = json.loads((set_dir / "gt.json").read_text())["images"]
    by_file = {r["file"]: r for r in json.loads(score_json.read_text())["per_image"]}
    rows = []
    for entry in images:
        coverage = by_file[entry["file"]]["coverage"]
        for index, (box, cov) in enumerate(zip(entry["boxes"], coverage, strict=True)):
            if box["label"] == "face" and cov is not None:
                rows.append((entry["file"], index, size_bucket(box), float(cov)))
    return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", action="append", required=True, help="first one is the base")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "cf_runtime_recall")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--append-to", type=Path, default=None, help="a results .md to extend")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    policy = RedactionPolicy()
    models = load_models(args.variant)
    detector = CenterFaceDetector(threshold=policy.faces.threshold, threads=1, quantized=True)
    results: dict[str, Any] = {}
    coverage: dict[str, dict[str, list[tuple[str, int, str, float]]]] = {}
    for name in args.variant:
        detector._model = models[name]
        for set_name in SETS:
            set_dir = SHARED / "data" / set_name
            regions = args.out / f"{name}.{set_name}.jsonl"
            regions_file(detector, policy, set_dir, regions)
            score(set_dir, regions, missed=0)
            data = json.loads(regions.with_suffix(".score.json").read_text())
            face = data["labels"]["face"]
            results.setdefault(set_name, {})[name] = {
                "recall@0.9": round(face["recall@0.9"], 4),
                "buckets": {
                    b: {"recall@0.9": _round(v["recall@0.9"]), "boxes": v["boxes"]}
                    for b, v in face["buckets"].items()
                },
                "over_redaction_mean": round(data["over_redaction"]["mean"], 4),
            }
            covered = face_coverage(set_dir, regions.with_suffix(".score.json"))
            coverage.setdefault(set_name, {})[name] = covered
            print(name, set_name, json.dumps(results[set_name][name]), flush=True)
    base_name = args.variant[0]
    changes: dict[str, Any] = {}
    for set_name, by_variant in coverage.items():
        base = by_variant[base_name]
        for name, rows in by_variant.items():
            if name == base_name:
                continue
            lost = [
                {"file": f, "box": i, "bucket": b, "base": round(c0, 3), "variant": round(c, 3)}
                for (f, i, b, c0), (_, _, _, c) in zip(base, rows, strict=True)
                if c0 >= 0.9 > c
            ]
            gained = [
                {"file": f, "box": i, "bucket": b, "base": round(c0, 3), "variant": round(c, 3)}
                for (f, i, b, c0), (_, _, _, c) in zip(base, rows, strict=True)
                if c >= 0.9 > c0
            ]
            changes.setdefault(set_name, {})[name] = {"lost": lost, "gained": gained}
            print(set_name, name, "lost", len(lost), "gained", len(gained), flush=True)
    machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    suffix = f"-{args.tag}" if args.tag else ""
    out = {"date": date, "machine": machine, "base": base_name, "results": results,
           "changes_against_base": changes}  # fmt: skip
    target = args.results / f"centerface-runtime-recall-{date}{suffix}.json"
    target.write_text(json.dumps(out, indent=1) + "\n")
    text = markdown(out)
    if args.append_to is not None:
        with args.append_to.open("a", encoding="utf-8") as handle:
            handle.write("\n" + text + "\n")
    print(text)
    return 0


def markdown(out: dict[str, Any]) -> str:
    machine = out["machine"]
    lines = [
        f"## Recall, full face sets (`bench/centerface_runtime_recall.py`, {out['date']})",
        "",
        f"Commit `{machine['commit']}`{' (dirty)' if machine['worktree_dirty'] else ''}; load "
        f"{machine['loadavg_at_start']} at start, {machine['loadavg_at_end']} at end. The real "
        "detector (default policy), regions grown by `engine.grow`, masked as the operator "
        "masks them; recall@0.9 (faces) by short side.",
        "",
        "| set | variant | all | <20 | 20-50 | >50 | over-redaction | faces lost / gained vs "
        f"{out['base']} (by bucket) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for set_name, by_variant in out["results"].items():
        for name, r in by_variant.items():
            cells = []
            for bucket in ("<20", "20-50", ">50"):
                b = r["buckets"].get(bucket, {})
                value = b.get("recall@0.9")
                cells.append("-" if value is None else f"{value:.4f} ({b['boxes']})")
            change = out["changes_against_base"].get(set_name, {}).get(name)
            moved = "-"
            if change is not None:
                moved = " / ".join(
                    ", ".join(
                        f"{bucket} {sum(x['bucket'] == bucket for x in change[kind])}"
                        for bucket in ("<20", "20-50", ">50")
                    )
                    for kind in ("lost", "gained")
                )
            lines.append(
                f"| {set_name} | {name} | {r['recall@0.9']:.4f} | " + " | ".join(cells)
                + f" | {r['over_redaction_mean']:.4f} | {moved} |"
            )  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
