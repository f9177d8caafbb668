"""Per-source default score thresholds of the pre-label sources, chosen on development photos.

    .venv/bin/python -m bench.prelabel_thresholds sweep [--reuse]    # development part only
    .venv/bin/python -m bench.prelabel_thresholds report [--reuse]   # both parts, old vs chosen

Ground truth: bench/data/prelabels_ground_truth.json (bench/prelabel_accuracy.py), split by
photo into a development and a held-out part by bench/prelabel_split.py (committed as
bench/prelabel_split.json). Images: redacted copies made by the real isolated engine with the
default policy, what the ML backend sees (bench/prelabel_accuracy.py's `redact_all`; `--reuse`
takes the lossless copies an earlier run left in bench/out/prelabels-inputs/).

Each source runs once per photo, keeping every candidate down to its model's floor (0.2), as
the backend does; a threshold keeps the candidates scoring >= it; overlapping candidates of one
label are merged best score first (IoU > 0.5, ml_backend.results). Matching as
prelabel_accuracy.py: greedy by score, one prediction per ground-truth box, IoU >= 0.5
(0.3 reported beside it); the vehicle classes are one `vehicle` class.

The rule, written down before any sweep ran and before the held-out part was scored:

    minimise the annotator's edit cost C(t) = 3 * FN + 1 * FP on the development part
    (IoU 0.5), among thresholds whose precision is >= 0.5; ties go to the higher threshold;
    grid 0.20, 0.22, ..., 0.80; no feasible threshold: keep 0.4.

Why: an annotator reviewing pre-labels deletes a wrong box with one action (select it, Delete),
but draws a missed one with about three (pick the label, drag the box, correct a corner), so a
miss costs ~3 wrong boxes; a box that misses IoU 0.5 counts as both (delete + draw). The
precision floor keeps at least every second proposal right: below it the pre-labels are more
noise than help and annotators stop trusting them. The weight 3 is a stated assumption, not a
measurement; `sweep` also prints, on the development part only, what weights 2 and 5 and plain
F1 would have chosen, to show how much the choice depends on it.

Per class: the persons source has one class; the vehicles source merges NanoDet's five vehicle
classes with the Open Images SSD's cars, and the ground truth has one vehicle class, so the only
per-class lever measurable here is one threshold per model (NanoDet vehicles vs SSD cars). It
is swept on the development part as a diagnostic; adopted only if it lowers the development
cost by >= 10% against the single vehicles threshold (it has twice the freedom on ~40 boxes).

`sweep` logs every evaluated threshold as a line of bench/results/prelabel-thresholds-<date>
-sweep.jsonl and writes the choice to bench/results/prelabel-thresholds-choice.json;
`report` reads that choice and scores 0.4 and the chosen thresholds on both parts:
bench/results/prelabel-thresholds-<date>.md/.json.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np

from bench.prelabel_accuracy import (
    OUT,
    RESULTS,
    VEHICLES,
    Box,
    Counts,
    find_images,
    ground_truth,
    match,
    redact_all,
)

CHOICE_FILE = RESULTS / "prelabel-thresholds-choice.json"
GRID = [round(0.2 + 0.02 * i, 2) for i in range(31)]
OLD = 0.4
MISS_COST, WRONG_COST, MIN_PRECISION = 3, 1, 0.5
SPLIT_GAIN = 0.9
CLS = {"persons": "person", "vehicles": "vehicle"}
Cand = tuple[Box, float, str]  # box, score, which model ("nanodet" / "ssd")


def f1(c: Counts) -> float:
    return 2 * c.tp / (2 * c.tp + c.fp + c.fn) if c.tp + c.fp + c.fn else 0.0


def row(c: Counts) -> dict[str, Any]:
    return {**c.row(), "f1": round(f1(c), 3), "cost": MISS_COST * c.fn + WRONG_COST * c.fp}


def redacted_copies(gts: list[dict[str, Any]]) -> list[np.ndarray]:
    paths = find_images({g["sha256"] for g in gts})
    missing = [g["sha256"][:12] for g in gts if g["sha256"] not in paths]
    if missing:
        raise SystemExit(f"ground-truth images not found: {missing}")
    inputs = OUT.parent / "prelabels-inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    cached = [inputs / f"{g['sha256'][:16]}.redacted.png" for g in gts]
    if "--reuse" in sys.argv and all(p.is_file() for p in cached):
        return [cv2.imread(str(p)) for p in cached]
    staged = []
    for g in gts:
        p = paths[g["sha256"]]
        target = inputs / f"{g['sha256'][:16]}{p.suffix}"  # the gateway keys assets by name
        target.write_bytes(p.read_bytes())
        staged.append(target)
    redacted = redact_all(staged)
    for path, pixels in zip(cached, redacted, strict=True):
        cv2.imwrite(str(path), pixels)
    return redacted


def candidates(images: list[np.ndarray]) -> list[dict[str, list[Cand]]]:
    """Per photo: the persons source's and the vehicles source's candidates (down to the floor),
    and each vehicle model's own, unmerged (`vehicles:nanodet`, `vehicles:ssd`)."""
    from ml_backend.settings import MLBackendSettings
    from ml_backend.sources.nanodet import PersonSource, VehicleSource

    settings = MLBackendSettings()
    persons, vehicles = PersonSource(settings), VehicleSource(settings)
    ssd_ids: set[tuple[float, ...]] = set()
    out = []
    for image in images:
        night = vehicles.night_model.detect(image)
        ssd_ids = {(d.x, d.y, d.w, d.h, d.score) for d in night}
        nano = [d for d in vehicles.model.detect(image) if d.model_class in VEHICLES]
        out.append({
            "persons": [((d.x, d.y, d.x + d.w, d.y + d.h), d.score, "nanodet")
                        for d in persons.detect(image)],
            "vehicles": [((d.x, d.y, d.x + d.w, d.y + d.h), d.score,
                          "ssd" if (d.x, d.y, d.w, d.h, d.score) in ssd_ids else "nanodet")
                         for d in vehicles.detect(image)],
            "vehicles:nanodet": [((d.x, d.y, d.x + d.w, d.y + d.h), d.score, "nanodet")
                                 for d in nano],
            "vehicles:ssd": [((d.x, d.y, d.x + d.w, d.y + d.h), d.score, "ssd") for d in night],
        })  # fmt: skip
    return out


def kept(cands: list[Cand], threshold: float | dict[str, float]) -> list[tuple[Box, float]]:
    """Over the threshold (one, or one per model), then one box per object, best score first."""
    from bench.prelabel_accuracy import iou

    out: list[tuple[Box, float]] = []
    for box, score, model in sorted(cands, key=lambda c: -c[1]):
        t = threshold if isinstance(threshold, float) else threshold[model]
        if score >= t and all(iou(box, b) <= 0.5 for b, _ in out):
            out.append((box, score))
    return out


def merged(per_model: dict[str, list[Cand]]) -> list[Cand]:
    """VehicleSource's merge of its two models' candidates (of two over IoU 0.5 the better)."""
    from bench.prelabel_accuracy import iou

    out: list[Cand] = []
    for c in sorted(per_model["vehicles:nanodet"] + per_model["vehicles:ssd"], key=lambda c: -c[1]):
        if all(iou(c[0], k[0]) <= 0.5 for k in out):
            out.append(c)
    return out


def score(
    gts: list[dict[str, Any]],
    cands: list[dict[str, list[Cand]]],
    source: str,
    threshold: float | dict[str, float],
    iou_min: float = 0.5,
) -> Counts:
    total = Counts()
    for g, c in zip(gts, cands, strict=True):
        if isinstance(threshold, dict):  # one threshold per model: threshold each, then merge
            pool = [x for x in merged(c) if x[1] >= threshold[x[2]]]
        else:
            pool = c[source]
        total.add(match(kept(pool, threshold), g["boxes"][CLS[source]], iou_min))
    return total


def choose(by_t: dict[float, Counts], miss: float = MISS_COST) -> float:
    best: tuple[float, float] | None = None
    for t, c in by_t.items():
        p = c.tp / (c.tp + c.fp) if c.tp + c.fp else 0.0
        if p < MIN_PRECISION:
            continue
        key = (miss * c.fn + WRONG_COST * c.fp, -t)
        if best is None or key < best:
            best = key
    return OLD if best is None else -best[1]


def parts() -> tuple[list[dict[str, Any]], list[str]]:
    from bench.prelabel_split import load

    split = load()
    gts = ground_truth()
    unknown = [g["sha256"][:12] for g in gts if g["sha256"] not in split]
    if unknown:
        raise SystemExit(f"photos not in bench/prelabel_split.json: {unknown}")
    return gts, [split[g["sha256"]] for g in gts]


def machine() -> dict[str, Any]:
    from bench.ml_backend import machine_info

    return machine_info()


def sweep() -> None:
    gts, where = parts()
    info = machine()
    images = redacted_copies(gts)  # all photos: the redaction knows no threshold
    dev = [g for g, p in zip(gts, where, strict=True) if p == "dev"]
    cands = candidates([im for im, p in zip(images, where, strict=True) if p == "dev"])
    now = datetime.now(UTC)
    log = RESULTS / f"prelabel-thresholds-{now:%Y-%m-%d}-sweep.jsonl"
    base = {"at": now.isoformat(timespec="seconds"), "commit": info["commit"][:12],
            "worktree_dirty": info["worktree_dirty"], "load": info["loadavg_at_start"],
            "part": "dev", "photos": len(dev), "iou": 0.5}  # fmt: skip
    lines, chosen, alternatives = [], {}, {}
    for source in ("persons", "vehicles"):
        by_t = {t: score(dev, cands, source, t) for t in GRID}
        for t, c in by_t.items():
            lines.append({**base, "source": source, "class": CLS[source], "threshold": t,
                          **row(c)})  # fmt: skip
        chosen[source] = choose(by_t)
        alternatives[source] = {
            "miss_cost_2": choose(by_t, 2),
            "miss_cost_5": choose(by_t, 5),
            "max_f1": max(sorted(by_t, reverse=True), key=lambda t: f1(by_t[t])),
        }
    # per model inside the vehicles source (diagnostic; adopted only if >= 10% cheaper on dev)
    best_pair: tuple[int, float, float] | None = None  # (cost, -t_nanodet, -t_ssd)
    for tn in GRID:
        for ts in GRID:
            c = score(dev, cands, "vehicles", {"nanodet": tn, "ssd": ts})
            lines.append({**base, "source": "vehicles", "class": "vehicle",
                          "threshold": {"nanodet": tn, "ssd": ts}, **row(c)})  # fmt: skip
            p = c.tp / (c.tp + c.fp) if c.tp + c.fp else 0.0
            key = (MISS_COST * c.fn + WRONG_COST * c.fp, -tn, -ts)
            if p >= MIN_PRECISION and (best_pair is None or key < best_pair):
                best_pair = key
    single_cost = row(score(dev, cands, "vehicles", chosen["vehicles"]))["cost"]
    per_model = None
    if best_pair is not None:
        per_model = {"nanodet": -best_pair[1], "ssd": -best_pair[2], "cost": best_pair[0],
                     "single_threshold_cost": single_cost,
                     "adopted": best_pair[0] <= SPLIT_GAIN * single_cost}  # fmt: skip
    with log.open("a") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
    choice = {
        "at": base["at"], "commit": base["commit"], "machine": info,
        "rule": f"min {MISS_COST}*FN + {WRONG_COST}*FP on dev at IoU 0.5, precision >= "
                f"{MIN_PRECISION}, ties to the higher threshold, grid 0.20..0.80 step 0.02",
        "split": "bench/prelabel_split.json", "dev_photos": len(dev),
        "chosen": chosen, "dev_only_alternatives": alternatives, "vehicles_per_model": per_model,
        "sweep_log": str(log.relative_to(RESULTS.parent.parent)),
    }  # fmt: skip
    CHOICE_FILE.write_text(json.dumps(choice, indent=1) + "\n")
    print(json.dumps({k: choice[k] for k in ("chosen", "dev_only_alternatives",
                                              "vehicles_per_model")}, indent=1))  # fmt: skip
    for source in ("persons", "vehicles"):
        print(source)
        for line in lines:
            if line["source"] == source and isinstance(line["threshold"], float):
                print(
                    f"  {line['threshold']:.2f} tp={line['tp']} fp={line['fp']} fn={line['fn']}"
                    f" P={line['precision']} R={line['recall']} F1={line['f1']}"
                    f" cost={line['cost']}"
                )


def per_photo(
    gts: list[dict[str, Any]], cands: list[dict[str, list[Cand]]], source: str, t: float
) -> list[Counts]:
    return [score([g], [c], source, t) for g, c in zip(gts, cands, strict=True)]


def bootstrap(
    old: list[Counts], new: list[Counts], groups: list[str], draws: int = 2000
) -> dict[str, list[float]]:
    """95% intervals of new minus old (cost, F1, precision, recall), resampling the split's
    groups of photos with replacement (seeded): how much a part this small can say."""
    rng = np.random.default_rng(20261203)
    keys = sorted(set(groups))
    members = {k: [i for i, g in enumerate(groups) if g == k] for k in keys}
    out: dict[str, list[float]] = {"cost": [], "f1": [], "precision": [], "recall": []}
    for _ in range(draws):
        pick = [i for k in rng.choice(keys, size=len(keys)) for i in members[str(k)]]
        a, b = Counts(), Counts()
        for i in pick:
            a.add(old[i])
            b.add(new[i])
        ra, rb = row(a), row(b)
        for key in out:
            out[key].append(float(rb[key] - ra[key]))
    return {k: [round(float(np.percentile(v, q)), 3) for q in (2.5, 97.5)] for k, v in out.items()}


def report() -> None:
    choice = json.loads(CHOICE_FILE.read_text())
    gts, where = parts()
    info = machine()
    cands = candidates(redacted_copies(gts))
    per_model = choice.get("vehicles_per_model") or {}
    settings: dict[str, dict[str, float | dict[str, float]]] = {
        s: {"old 0.4": OLD, f"chosen {choice['chosen'][s]}": float(choice["chosen"][s])}
        for s in ("persons", "vehicles")
    }
    if per_model.get("adopted"):
        settings["vehicles"]["per model"] = {"nanodet": per_model["nanodet"],
                                             "ssd": per_model["ssd"]}  # fmt: skip
    from bench.prelabel_split import SPLIT_FILE

    group_of = {e["sha256"]: e["group"]
                for entries in json.loads(SPLIT_FILE.read_text())["parts"].values()
                for e in entries}  # fmt: skip
    rows, intervals = [], []
    for part in ("dev", "holdout", "all"):
        idx = [i for i, p in enumerate(where) if part in (p, "all")]
        sub_g, sub_c = [gts[i] for i in idx], [cands[i] for i in idx]
        for source, variants in settings.items():
            for name, t in variants.items():
                for iou_min in (0.5, 0.3):
                    c = score(sub_g, sub_c, source, t, iou_min)
                    rows.append({"part": part, "photos": len(idx), "source": source,
                                 "class": CLS[source], "setting": name, "threshold": t,
                                 "iou": iou_min, **row(c)})  # fmt: skip
            new = float(choice["chosen"][source])
            old_counts = per_photo(sub_g, sub_c, source, OLD)
            new_counts = per_photo(sub_g, sub_c, source, new)
            groups = [group_of[g["sha256"]] for g in sub_g]
            intervals.append({"part": part, "source": source, "old": OLD, "new": new,
                              "groups": len(set(groups)),
                              **bootstrap(old_counts, new_counts, groups)})  # fmt: skip
    now = datetime.now(UTC)
    payload = {"date": now.isoformat(timespec="seconds"), "machine": info, "choice": choice,
               "rows": rows, "bootstrap_chosen_minus_old": intervals}  # fmt: skip
    stem = RESULTS / f"prelabel-thresholds-{now:%Y-%m-%d}"
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    n = {p: sum(1 for w in where if w == p) for p in ("dev", "holdout")}
    lines = [
        f"# Pre-label score thresholds per source, {payload['date']}",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores (shared; load at start "
        f"{info['loadavg_at_start']}); commit {info['commit'][:12]}"
        f"{' (ml_backend/ changed, uncommitted)' if info['worktree_dirty'] else ''}.",
        "",
        f"Split: bench/prelabel_split.json ({n['dev']} development / {n['holdout']} held-out "
        "photos; bench/prelabel_split.py). Chosen on the development part by the rule "
        f"fixed beforehand: {choice['rule']} (bench/prelabel_thresholds.py; sweep log "
        f"{choice['sweep_log']}, choice {CHOICE_FILE.name} at commit {choice['commit']}). "
        "Redacted copies (real engine, default policy); matching greedy by score, one "
        "prediction per ground-truth box.",
        "",
        "| part | source / class | setting | IoU | TP | FP | FN | P | R | F1 | cost 3FN+FP |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['part']} ({r['photos']}) | {r['source']} / {r['class']} | "
                     f"{r['setting']} | {r['iou']} | {r['tp']} | {r['fp']} | {r['fn']} | "
                     f"{r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | "
                     f"{r['cost']} |")  # fmt: skip
    lines += [
        "",
        "Chosen minus old 0.4 at IoU 0.5, 95% interval over 2000 resamples of the split's "
        "photo groups (paired; a negative cost is better):",
        "",
        "| part | source | groups | cost | F1 | precision | recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in intervals:
        spans = [f"[{b[k][0]:+g}, {b[k][1]:+g}]" for k in ("cost", "f1", "precision", "recall")]
        head = f"| {b['part']} | {b['source']} {b['old']} -> {b['new']} | {b['groups']} | "
        lines.append(head + " | ".join(spans) + " |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    {"sweep": sweep, "report": report}[sys.argv[1]]()
