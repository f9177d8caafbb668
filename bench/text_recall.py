"""Personal-text recall on synthetic PII rendered onto real photos (faces-masks, CC0), in memory.

    .venv/bin/python -m bench.text_recall --ocr ppocr [--photos 12]

Each photo (upscaled to 1280 px wide) gets one string per entity type at a random size, angle and
contrast; a string counts as found when >= 90% of its (rotated) ink box lies inside the detector's
regions grown by TextPolicy.margin. Prints recall per entity type and per size / angle bucket and
ms/image. Needs ../shared/data (not part of the project).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from redaction.detectors.text_pii import TextPIIDetector
from redaction.policy import TextPolicy

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = {
    "EMAIL_ADDRESS": ["jane.doe@example.com", "m.rossi@posteo.de", "info@kanzlei-weber.at"],
    "PHONE_NUMBER": ["+49 30 1234567", "(212) 555-0187", "+44 20 7946 0958"],
    "CREDIT_CARD": ["4111 1111 1111 1111", "5500 0000 0000 0004", "3782 822463 10005"],
    "IBAN_CODE": ["DE89 3704 0044 0532 0130 00", "GB29 NWBK 6016 1331 9268 19"],
    "URL": ["https://www.example.org/profile", "www.muster-firma.de", "http://shop.example.net"],
}
HEIGHTS = (12, 20, 32, 48)
ANGLES = (0, 10, 25)


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


def make_scene(photo: np.ndarray, rng: random.Random) -> tuple[np.ndarray, list[dict[str, object]]]:
    img = cv2.resize(photo, (1280, round(photo.shape[0] * 1280 / photo.shape[1])))
    img = cv2.copyMakeBorder(img, 0, max(0, 900 - img.shape[0]), 0, 0, cv2.BORDER_REFLECT)
    truths: list[dict[str, object]] = []
    rows = np.linspace(60, img.shape[0] - 150, len(SAMPLES)).astype(int)
    for (entity, texts), y in zip(SAMPLES.items(), rows, strict=True):
        for _attempt in range(10):
            height, angle = rng.choice(HEIGHTS), rng.choice(ANGLES) * rng.choice((-1, 1))
            corners = render(img, rng.choice(texts), y=int(y), height=height, angle=angle,
                             contrast=rng.choice((80, 160)), rng=rng)  # fmt: skip
            if corners is not None:
                truths.append({"entity": entity, "height": height, "angle": abs(angle),
                               "corners": corners})  # fmt: skip
                break
    return img, truths


def covered(corners: np.ndarray, mask: np.ndarray) -> float:
    poly = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(poly, [np.round(corners).astype(np.int32)], 1)
    inside = poly.astype(bool)
    return float(mask[inside].mean()) if inside.any() else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ocr", default="ppocr")
    ap.add_argument("--photos", type=int, default=12)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    folder = SHARED / "data" / "faces-masks"
    files = [e["file"] for e in json.loads((folder / "gt.json").read_text())["images"]]
    rng = random.Random(args.seed)  # noqa: S311 (reproducible scenes, not secrets)
    policy = TextPolicy()
    detector = TextPIIDetector(entities=policy.entities, score_threshold=policy.score_threshold,
                               ocr=args.ocr)  # fmt: skip
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    elapsed = 0.0
    for name in rng.sample(files, args.photos):
        img, truths = make_scene(cv2.imread(str(folder / name), cv2.IMREAD_COLOR), rng)
        start = time.process_time()
        regions = detector.detect(img)
        elapsed += time.process_time() - start
        mask = np.zeros(img.shape[:2], bool)
        for r in regions:
            g = r.expanded(policy.margin, width=img.shape[1], height=img.shape[0])
            mask[g.y : g.y + g.h, g.x : g.x + g.w] = True
        for t in truths:
            ok = covered(np.asarray(t["corners"]), mask) >= 0.9
            for key in (f"entity {t['entity']}", f"height {t['height']}px", f"angle {t['angle']}"):
                hits[key][0] += ok
                hits[key][1] += 1
    print(f"ocr={args.ocr} photos={args.photos} {1000 * elapsed / args.photos:.0f} ms/img (CPU)")
    for key in sorted(hits):
        found, total = hits[key]
        print(f"  {key:24s} {found:3d}/{total:<3d} {found / total:.2f}")


if __name__ == "__main__":
    main()
