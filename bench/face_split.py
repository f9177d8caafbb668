"""Split the face sample sets into a development part and a part never tuned on, by photo.

    .venv/bin/python -m bench.face_split            # writes bench/face_split.json
    .venv/bin/python -m bench.face_split --gt-out bench/out/split   # + SET/gt-<part>.json

Near-duplicate photos must land in the same part, or the held-out part would hold copies of
development photos. Each photo gets a 64-bit difference hash (grey, 9x8, horizontal
differences); photos whose hashes differ in at most `--near` bits are grouped (union-find, also
across sets). A group goes to the held-out part when the first byte of the SHA-256 of its
smallest member's content digest is odd: deterministic, from the pixels' file bytes only,
never from a file name. The split is committed as a file list (`bench/face_split.json`);
`--gt-out` writes each part's ground truth for `eval_redaction.py --gt`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from bench.scoring import SHARED

SETS = ("faces-masks", "faces-dlib")
SPLIT_FILE = Path(__file__).resolve().parent / "face_split.json"


def dhash(path: Path) -> int:
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise SystemExit(f"cannot read {path}")
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def groups(keys: list[str], hashes: list[int], near: int) -> list[list[int]]:
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            if (hashes[i] ^ hashes[j]).bit_count() <= near:
                parent[find(i)] = find(j)
    out: dict[int, list[int]] = {}
    for i in range(len(keys)):
        out.setdefault(find(i), []).append(i)
    return list(out.values())


def split(data: Path, near: int) -> dict[str, dict[str, list[str]]]:
    keys, digests, hashes = [], [], []
    for name in SETS:
        for entry in json.loads((data / name / "gt.json").read_text())["images"]:
            path = data / name / entry["file"]
            keys.append(f"{name}/{entry['file']}")
            digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
            hashes.append(dhash(path))
    result: dict[str, dict[str, list[str]]] = {n: {"dev": [], "holdout": []} for n in SETS}
    for members in groups(keys, hashes, near):
        anchor = min(digests[i] for i in members)
        part = "holdout" if hashlib.sha256(anchor.encode()).digest()[0] % 2 else "dev"
        for i in members:
            name, file = keys[i].split("/", 1)
            result[name][part].append(file)
    for parts in result.values():
        for files in parts.values():
            files.sort()
    return result


def write_gt(data: Path, parts: dict[str, dict[str, list[str]]], out: Path) -> None:
    for name, by_part in parts.items():
        gt = json.loads((data / name / "gt.json").read_text())
        for part, files in by_part.items():
            keep = set(files)
            sub = {**gt, "images": [e for e in gt["images"] if e["file"] in keep]}
            (out / name).mkdir(parents=True, exist_ok=True)
            (out / name / f"gt-{part}.json").write_text(json.dumps(sub))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED / "data")
    ap.add_argument("--near", type=int, default=12, help="dHash bits apart for near-duplicates")
    ap.add_argument("--gt-out", type=Path, help="write SET/gt-dev.json and SET/gt-holdout.json")
    args = ap.parse_args(argv)
    if not all((args.data / n / "gt.json").is_file() for n in SETS):
        print(f"no face sets under {args.data}", file=sys.stderr)
        return 2
    parts = split(args.data, args.near)
    SPLIT_FILE.write_text(
        json.dumps({"near_bits": args.near, "sets": parts}, indent=1, sort_keys=True) + "\n"
    )
    for name, by_part in parts.items():
        print(name, {p: len(f) for p, f in by_part.items()})
    if args.gt_out:
        write_gt(args.data, parts, args.gt_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
