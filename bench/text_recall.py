"""Personal-text recall on synthetic PII rendered onto real photos (faces-masks, CC0), in memory.

    .venv/bin/python -m bench.text_recall [--ocr ppocr,tesseract] [--photos 12] [--seed 7] [--tag T]

Each photo (upscaled to 1280 px wide) gets one string per entity type (e-mail, phone, card
number, IBAN, URL) at a random text height (12/20/32/48 px), angle (0/10/25 degrees, either
way) and contrast (80/160 grey levels between text and its plate). Every OCR engine named in
`--ocr` sees the same scenes (one seed), image by image. A string counts as found when >= 90%
of its (rotated) ink box lies inside the detector's regions grown by TextPolicy.margin.

Reported per engine: recall per entity type, text height, angle and contrast, and overall;
CPU ms per image (`time.process_time()` of this process plus the CPU of finished child
processes, since Tesseract runs as one; Tesseract is held to one OpenMP thread, as PP-OCR
runs on one onnxruntime thread); false positives: returned regions that overlap no rendered
string (they mask real text in the photo, or nothing), per image. Every miss is classified:
"not read" (no OCR word on the string), "read, no entity" (words read, no region on them) or
"partly masked" (regions cover < 90%), with the words the OCR read there in the order it
passed them to Presidio. The markdown also tabulates recall by height x angle; the JSON keeps
every string's outcome and every false positive with the words under it.

Results: `bench/results/text-recall-<date>[-<tag>].md/.json` with machine, date and commit.
Needs ../shared/data (not part of the project).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from presidio_image_redactor.ocr import OCR

from bench.redaction import REPO, machine_info
from bench.scoring import SHARED
from redaction.detectors.text_pii import TextPIIDetector
from redaction.policy import TextPolicy
from redaction.types import Region

SAMPLES = {
    "EMAIL_ADDRESS": ["jane.doe@example.com", "m.rossi@posteo.de", "info@kanzlei-weber.at"],
    "PHONE_NUMBER": ["+49 30 1234567", "(212) 555-0187", "+44 20 7946 0958"],
    "CREDIT_CARD": ["4111 1111 1111 1111", "5500 0000 0000 0004", "3782 822463 10005"],
    "IBAN_CODE": ["DE89 3704 0044 0532 0130 00", "GB29 NWBK 6016 1331 9268 19"],
    "URL": ["https://www.example.org/profile", "www.muster-firma.de", "http://shop.example.net"],
}
HEIGHTS = (12, 20, 32, 48)
ANGLES = (0, 10, 25)
CONTRASTS = (80, 160)
BUCKETS = ("entity", "height", "angle", "contrast")
FOUND_AT = 0.9


@dataclass(frozen=True)
class Truth:
    entity: str
    text: str
    height: int
    angle: int
    contrast: int
    corners: np.ndarray


@dataclass(frozen=True)
class Word:
    text: str
    x: int
    y: int
    w: int
    h: int


class RecordingOCR(OCR):
    """Passes Presidio's OCR call through and keeps the words, to explain misses."""

    def __init__(self, inner: OCR) -> None:
        self.inner = inner
        self.words: list[Word] = []

    def perform_ocr(self, image: object, **kwargs: Any) -> dict[str, list[Any]]:
        result: dict[str, list[Any]] = self.inner.perform_ocr(image, **kwargs)
        keys = ("text", "left", "top", "width", "height")
        self.words = [
            Word(str(t).strip(), int(x), int(y), int(w), int(h))
            for t, x, y, w, h in zip(*(result[k] for k in keys), strict=True)
            if str(t).strip()
        ]
        return result

    def get_text_from_ocr_dict(self, ocr_result: dict[str, Any], separator: str = " ") -> str:  # type: ignore[override]
        # The engine's own text building (PP-OCR keeps lines apart) must survive the wrapper.
        text: str = self.inner.get_text_from_ocr_dict(ocr_result, separator)
        return text


# --------------------------------------------------------------------------- scenes


def render(img: np.ndarray, text: str, *, y: int, height: int, angle: float, contrast: int,
           rng: random.Random) -> np.ndarray | None:  # fmt: skip
    """Draw text on a plate of the local colour; return its ink box's corners (None: no room)."""
    scale = height / 22
    thickness = max(1, round(scale * 1.6))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(3, th // 3)
    patch_h, patch_w = th + base + 2 * pad, tw + 2 * pad
    free = img.shape[1] - patch_w - 40
    if free < 0:
        return None
    x = 20 + rng.randint(0, free)
    mean = img[y : y + patch_h, x : x + patch_w].reshape(-1, 3).mean(0)
    bg = 230 if mean.mean() < 128 + contrast / 2 else 30
    fg = bg - contrast if bg > 128 else bg + contrast
    patch = np.full((patch_h, patch_w, 3), bg, np.uint8)
    cv2.putText(patch, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (fg, fg, fg),
                thickness, cv2.LINE_AA)  # fmt: skip
    ink = (np.abs(patch[..., 0].astype(int) - bg) > 40).astype(np.uint8)
    ix, iy, iw, ih = cv2.boundingRect(ink)
    affine = cv2.getRotationMatrix2D((x + patch_w / 2, y + patch_h / 2), angle, 1.0)
    affine = affine @ np.array([[1, 0, x], [0, 1, y], [0, 0, 1]], np.float64)
    corners = np.float32([[ix, iy], [ix + iw, iy], [ix + iw, iy + ih], [ix, iy + ih]])
    corners = np.asarray(cv2.transform(corners[None], affine)[0])
    h, w = img.shape[:2]
    if corners.min() < 0 or corners[:, 0].max() >= w or corners[:, 1].max() >= h:
        return None
    full = cv2.warpAffine(patch, affine, (w, h))
    alpha = cv2.warpAffine(np.ones(patch.shape[:2], np.float32), affine, (w, h))
    img[:] = (img * (1 - alpha[..., None]) + full * alpha[..., None]).astype(np.uint8)
    return corners


def make_scene(photo: np.ndarray, rng: random.Random) -> tuple[np.ndarray, list[Truth]]:
    img = cv2.resize(photo, (1280, round(photo.shape[0] * 1280 / photo.shape[1])))
    img = cv2.copyMakeBorder(img, 0, max(0, 900 - img.shape[0]), 0, 0, cv2.BORDER_REFLECT)
    truths: list[Truth] = []
    rows = np.linspace(60, img.shape[0] - 150, len(SAMPLES)).astype(int)
    for (entity, texts), y in zip(SAMPLES.items(), rows, strict=True):
        for _attempt in range(10):
            height, angle = rng.choice(HEIGHTS), rng.choice(ANGLES) * rng.choice((-1, 1))
            text, contrast = rng.choice(texts), rng.choice(CONTRASTS)
            corners = render(img, text, y=int(y), height=height, angle=angle,
                             contrast=contrast, rng=rng)  # fmt: skip
            if corners is not None:
                truths.append(Truth(entity, text, height, abs(angle), contrast, corners))
                break
    return img, truths


# --------------------------------------------------------------------------- scoring


def polygon_mask(corners: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    poly = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(poly, [np.round(corners).astype(np.int32)], 1)
    return poly.astype(bool)


def box_mask(regions: list[Region], shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    for r in regions:
        mask[r.y : r.y + r.h, r.x : r.x + r.w] = True
    return mask


def words_on(corners: np.ndarray, words: list[Word], *, slack: float) -> list[Word]:
    """OCR words whose centre lies on the string (within `slack` px of its ink box)."""
    contour = np.round(corners).astype(np.float32).reshape(-1, 1, 2)
    return [
        w for w in words
        if cv2.pointPolygonTest(contour, (w.x + w.w / 2, w.y + w.h / 2), True) >= -slack
    ]  # fmt: skip


def judge(truth: Truth, *, grown: np.ndarray, raw: np.ndarray, words: list[Word]) -> dict[str, Any]:
    """One rendered string's outcome: coverage, found, and why not when missed."""
    inside = polygon_mask(truth.corners, grown.shape)
    coverage = float(grown[inside].mean()) if inside.any() else 0.0
    on = words_on(truth.corners, words, slack=truth.height / 2)
    read = " ".join(w.text for w in on)
    if coverage >= FOUND_AT:
        reason = ""
    elif raw[inside].any():
        reason = "partly masked"
    elif read:
        reason = "read, no entity"
    else:
        reason = "not read"
    return {
        "entity": truth.entity, "text": truth.text, "height": truth.height,
        "angle": truth.angle, "contrast": truth.contrast, "coverage": round(coverage, 3),
        "found": coverage >= FOUND_AT, "reason": reason, "ocr_read": read,
        "ocr_words": [] if not reason else [[w.text, w.x, w.y, w.w, w.h] for w in on],
    }  # fmt: skip


def false_positives(regions: list[Region], truths: list[Truth], words: list[Word],
                    shape: tuple[int, ...]) -> list[dict[str, Any]]:  # fmt: skip
    """Regions that overlap no rendered string, with the OCR words under them."""
    rendered = np.zeros(shape[:2], bool)
    for t in truths:
        rendered |= polygon_mask(t.corners, shape)
    out = []
    for r in regions:
        if rendered[r.y : r.y + r.h, r.x : r.x + r.w].any():
            continue
        under = [w.text for w in words if _centre_in(w, r)]
        out.append(
            {"detector": r.detector, "box": [r.x, r.y, r.w, r.h], "ocr_read": " ".join(under)}
        )
    return out


def _centre_in(word: Word, r: Region) -> bool:
    cx, cy = word.x + word.w / 2, word.y + word.h / 2
    return r.x <= cx <= r.x + r.w and r.y <= cy <= r.y + r.h


Outcomes = list[dict[str, Any]]


def score_scene(img: np.ndarray, truths: list[Truth], regions: list[Region],
                words: list[Word], margin: float) -> tuple[Outcomes, Outcomes]:  # fmt: skip
    h, w = img.shape[:2]
    grown = box_mask([r.expanded(margin, width=w, height=h) for r in regions], img.shape)
    raw = box_mask(regions, img.shape)
    outcomes = [judge(t, grown=grown, raw=raw, words=words) for t in truths]
    return outcomes, false_positives(regions, truths, words, img.shape)


def recall_table(outcomes: list[dict[str, Any]]) -> dict[str, dict[str, list[int]]]:
    """{bucket: {value: [found, total]}} for every bucket, plus "all"."""
    table: dict[str, dict[str, list[int]]] = {b: defaultdict(lambda: [0, 0]) for b in BUCKETS}
    table["all"] = defaultdict(lambda: [0, 0])
    for o in outcomes:
        for bucket in BUCKETS:
            cell = table[bucket][str(o[bucket])]
            cell[0] += o["found"]
            cell[1] += 1
        table["all"]["all"][0] += o["found"]
        table["all"]["all"][1] += 1
    return {b: dict(sorted(v.items(), key=lambda kv: _order(kv[0]))) for b, v in table.items()}


def _order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (0, key)


# --------------------------------------------------------------------------- run


def cpu_seconds() -> float:
    """This process's CPU plus that of its reaped children (the tesseract binary)."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def build_engine(ocr: str, policy: TextPolicy) -> tuple[TextPIIDetector, RecordingOCR]:
    detector = TextPIIDetector(entities=policy.entities, score_threshold=policy.score_threshold,
                               ocr=ocr)  # fmt: skip
    # The detector composes Presidio's engine privately; wrapping its OCR only records words.
    engine = detector._engine
    recorder = RecordingOCR(engine.ocr)
    engine.ocr = recorder
    return detector, recorder


def run(args: argparse.Namespace, engines: list[str]) -> dict[str, Any]:
    folder = SHARED / "data" / "faces-masks"
    files = [e["file"] for e in json.loads((folder / "gt.json").read_text())["images"]]
    rng = random.Random(args.seed)  # noqa: S311 (reproducible scenes, not secrets)
    policy = TextPolicy()
    built = {name: build_engine(name, policy) for name in engines}
    results: dict[str, Any] = {
        name: {"cpu_s": 0.0, "outcomes": [], "false_positives": [], "fp_per_image": []}
        for name in engines
    }
    photos = rng.sample(files, args.photos)
    for i, name in enumerate(photos):
        img, truths = make_scene(cv2.imread(str(folder / name), cv2.IMREAD_COLOR), rng)
        for engine, (detector, recorder) in built.items():
            start = cpu_seconds()
            regions = detector.detect(img)
            results[engine]["cpu_s"] += cpu_seconds() - start
            outcomes, fps = score_scene(img, truths, regions, recorder.words, policy.margin)
            for o in outcomes:
                o["photo"] = name
            results[engine]["outcomes"] += outcomes
            results[engine]["false_positives"] += [{**f, "photo": name} for f in fps]
            results[engine]["fp_per_image"].append(len(fps))
        print(f"{i + 1}/{len(photos)} {name}", flush=True)
    for engine, res in results.items():
        res["ms_per_image"] = round(1000 * res.pop("cpu_s") / max(1, len(photos)), 1)
        res["recall"] = recall_table(res["outcomes"])
        res["miss_reasons"] = dict(Counter(o["reason"] for o in res["outcomes"] if o["reason"]))
        res["model"] = asdict(built[engine][0].model)
    return results


# --------------------------------------------------------------------------- report


def _cell(cell: list[int] | None) -> str:
    if not cell or not cell[1]:
        return "-"
    return f"{cell[0] / cell[1]:.2f} ({cell[0]}/{cell[1]})"


def recall_lines(report: dict[str, Any]) -> list[str]:
    engines = list(report["engines"])
    lines = [f"| bucket | value | {' | '.join(engines)} |", "|---|---|" + "---|" * len(engines)]
    first = report["engines"][engines[0]]["recall"]
    for bucket in [*BUCKETS, "all"]:
        for value in first[bucket]:
            cells = [_cell(report["engines"][e]["recall"][bucket].get(value)) for e in engines]
            label = (
                f"{value} px" if bucket == "height" else f"{value}°" if bucket == "angle" else value
            )
            lines.append(f"| {bucket} | {label} | {' | '.join(cells)} |")
    return lines


def matrix_lines(report: dict[str, Any]) -> list[str]:
    """Recall by text height (rows) and angle (columns), per engine."""
    lines = ["| engine | height | " + " | ".join(f"{a}°" for a in ANGLES) + " |",
             "|---|---|" + "---|" * len(ANGLES)]  # fmt: skip
    for engine, res in report["engines"].items():
        cells: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
        for o in res["outcomes"]:
            cells[o["height"], o["angle"]][0] += o["found"]
            cells[o["height"], o["angle"]][1] += 1
        for h in HEIGHTS:
            row = " | ".join(_cell(cells.get((h, a))) for a in ANGLES)
            lines.append(f"| {engine} | {h} px | {row} |")
    return lines


def engine_lines(report: dict[str, Any]) -> list[str]:
    lines = ["| engine | model | CPU ms/image | false positives / image (images with any) |",
             "|---|---|---|---|"]  # fmt: skip
    for engine, res in report["engines"].items():
        fps = res["fp_per_image"]
        mean = sum(fps) / max(1, len(fps))
        lines.append(f"| {engine} | {res['model']['name']} | {res['ms_per_image']:.0f} | "
                     f"{mean:.2f} ({sum(1 for n in fps if n)}/{len(fps)}) |")  # fmt: skip
    return lines


def miss_lines(report: dict[str, Any], examples: int = 8) -> list[str]:
    lines: list[str] = []
    for engine, res in report["engines"].items():
        misses = [o for o in res["outcomes"] if not o["found"]]
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(res["miss_reasons"].items()))
        lines += [f"### {engine}: {len(misses)} misses ({reasons or 'none'})", ""]
        read = [o for o in misses if o["ocr_read"]][:examples]
        for o in read:
            where = f"{o['height']} px, {o['angle']}°, contrast {o['contrast']}"
            lines.append(f"- {o['entity']} `{o['text']}` ({where}): {o['reason']}, "
                         f"read `{o['ocr_read']}`")  # fmt: skip
        fps = res["false_positives"][:examples]
        if fps:
            lines += ["", "False positives (first few): " + "; ".join(
                f"{f['detector']} on `{f['ocr_read'] or '?'}`" for f in fps)]  # fmt: skip
        lines.append("")
    return lines


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    dirty = " (plus uncommitted changes in the work tree)" if m["worktree_dirty"] else ""
    return "\n".join([
        f"# Personal-text recall on rendered PII — {report['date']}",
        "",
        f"Commit `{m['commit']}`{dirty}; {m['cpu']}, {m['cores']} cores (shared; load average "
        f"at start {m['loadavg_at_start']}); Python {m['python']}, onnxruntime "
        f"{m['onnxruntime']}, OpenCV {m['opencv']}.",
        f"{report['photos']} faces-masks photos (seed {report['seed']}), 5 strings each, the same "
        "scenes for every engine. Found = >= 90% of the string's ink box inside the regions "
        "grown by TextPolicy.margin. CPU ms/image: this process plus child processes.",
        "",
        "## Recall (found/total)",
        "",
        *recall_lines(report),
        "",
        "## Recall by text height and angle",
        "",
        *matrix_lines(report),
        "",
        "## Speed and false positives (regions on no rendered string)",
        "",
        *engine_lines(report),
        "",
        "## Misses",
        "",
        *miss_lines(report),
    ])  # fmt: skip


def json_text(report: dict[str, Any]) -> str:
    """Indented JSON with one line per string outcome and per false positive (grep-able)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    shallow = {**report, "engines": {}}
    for engine, res in report["engines"].items():
        shallow["engines"][engine] = {**res}
        for key in ("outcomes", "false_positives"):
            rows[f"@{engine}.{key}@"] = res[key]
            shallow["engines"][engine][key] = f"@{engine}.{key}@"
    text = json.dumps(shallow, indent=1)
    for marker, items in rows.items():
        lines = ",\n  ".join(json.dumps(item, ensure_ascii=False) for item in items)
        text = text.replace(json.dumps(marker), f"[\n  {lines}\n  ]" if items else "[]")
    return text + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ocr", default="ppocr,tesseract", help="comma-separated OCR engines")
    ap.add_argument("--photos", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--tag", default="", help="suffix for the results file names (-<tag>)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cv2.setNumThreads(1)
    os.environ["OMP_THREAD_LIMIT"] = "1"  # tesseract: one thread, like PP-OCR here
    if not (SHARED / "data" / "faces-masks" / "gt.json").is_file():
        print(f"no faces-masks set under {SHARED / 'data'}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "photos": args.photos,
        "seed": args.seed,
        "engines": run(args, [e for e in args.ocr.split(",") if e]),
    }
    report["elapsed_seconds"] = round(time.perf_counter() - started, 1)
    stem = f"text-recall-{report['date'][:10]}" + (f"-{args.tag}" if args.tag else "")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{stem}.json").write_text(json_text(report))
    (args.results / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    print(f"written {args.results / stem}.md/.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
