"""Split the pre-label ground truth into a development part and a held-out part, by photo.

    .venv/bin/python -m bench.prelabel_split        # writes bench/prelabel_split.json

The rule (fixed before any threshold was swept; nothing here looks at the boxes or scores):

1. Each ground-truth photo (bench/data/prelabels_ground_truth.json) belongs to one *source*:
   the dashcam video it was cut from (`dayride_type1_001`, `nightride_type3_001`; the demo
   copies `gateway/demo_photos/dashcam_<video>_t<s>.jpg` are frames of the same videos) or the
   photo set (`faces-masks`; the demo `masks_*` photos come from it). That and the frame's time
   stamp are the only things read from a file name.
2. Near-duplicates share a group: frames of one video at most `--gap` seconds (60) apart are
   chained into one group (consecutive frames of one stretch of the ride show the same cars);
   on top, photos whose 64-bit difference hashes are at most `--near` bits (12) apart are joined
   (bench/face_split.py's dHash; catches copies across sets).
3. Within each source, groups are ordered by SHA-256(`--seed` + the smallest content digest of
   the group's photos) and each goes, in that order, to the part that so far holds fewer photos
   of that source (development on ties). Seeded, from file bytes, balanced per source: day and
   night frames are in both parts.

The result is committed as bench/prelabel_split.json (digests and the file hints, per part).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPLIT_FILE = REPO / "bench" / "prelabel_split.json"
SEED = "prelabel-thresholds-2026-12-03"
_FRAME = re.compile(r"(dayride_type\d+_\d+|nightride_type\d+_\d+)(?:\.mp4_t=|_t)(\d+)\.jpg$")
_MASKS = re.compile(r"maksssksksss\d+\.jpg$")


def source_of(file: str) -> tuple[str, int | None]:
    """(source video or set, frame second or None) from a file hint."""
    frame = _FRAME.search(file)
    if frame:
        return frame.group(1), int(frame.group(2))
    if _MASKS.search(file):
        return "faces-masks", None
    raise SystemExit(f"no source known for {file}")


def split(gap: int, near: int, seed: str) -> dict[str, object]:
    from bench.face_split import dhash, groups
    from bench.prelabel_accuracy import GT_FILE, find_images

    tasks = json.loads(GT_FILE.read_text())
    digests = [t["data"]["image"].removeprefix("sha256:") for t in tasks]
    files = [t["data"]["file"] for t in tasks]
    paths = find_images(set(digests))
    missing = [d[:12] for d in digests if d not in paths]
    if missing:
        raise SystemExit(f"ground-truth images not found: {missing}")
    sources = [source_of(f) for f in files]
    hashes = [dhash(paths[d]) for d in digests]
    # union-find over: near dHash (face_split.groups) and frames of one video within `gap` s
    parent = list(range(len(tasks)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for members in groups(digests, hashes, near):
        for i in members[1:]:
            parent[find(i)] = find(members[0])
    by_video: dict[str, list[int]] = {}
    for i, (src, t) in enumerate(sources):
        if t is not None:
            by_video.setdefault(src, []).append(i)
    for idx in by_video.values():
        idx.sort(key=lambda i: sources[i][1] or 0)
        for a, b in itertools.pairwise(idx):
            if (sources[b][1] or 0) - (sources[a][1] or 0) <= gap:
                parent[find(b)] = find(a)
    grouped: dict[int, list[int]] = {}
    for i in range(len(tasks)):
        grouped.setdefault(find(i), []).append(i)
    per_source: dict[str, list[list[int]]] = {}
    for members in grouped.values():
        per_source.setdefault(sources[members[0]][0], []).append(members)
    parts: dict[str, list[dict[str, str]]] = {"dev": [], "holdout": []}
    counts: dict[str, dict[str, int]] = {}
    for src in sorted(per_source):
        order = sorted(
            per_source[src],
            key=lambda m: hashlib.sha256((seed + min(digests[i] for i in m)).encode()).digest(),
        )
        n = {"dev": 0, "holdout": 0}
        for members in order:
            part = "dev" if n["dev"] <= n["holdout"] else "holdout"
            n[part] += len(members)
            group = min(digests[i] for i in members)[:12]
            for i in sorted(members, key=lambda i: files[i]):
                parts[part].append({"sha256": digests[i], "file": files[i], "source": src,
                                    "group": group})  # fmt: skip
        counts[src] = n
    for entries in parts.values():
        entries.sort(key=lambda e: (e["source"], e["group"], e["file"]))
    return {"seed": seed, "gap_seconds": gap, "near_bits": near, "photos_per_source": counts,
            "parts": parts}  # fmt: skip


def load() -> dict[str, str]:
    """digest -> part, from the committed split."""
    data = json.loads(SPLIT_FILE.read_text())
    return {e["sha256"]: part for part, entries in data["parts"].items() for e in entries}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gap", type=int, default=60, help="seconds between frames of one group")
    ap.add_argument("--near", type=int, default=12, help="dHash bits apart for near-duplicates")
    ap.add_argument("--seed", default=SEED)
    args = ap.parse_args(argv)
    result = split(args.gap, args.near, args.seed)
    SPLIT_FILE.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["photos_per_source"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
