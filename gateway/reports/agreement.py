"""Inter-annotator agreement, computed here from the annotations the gateway holds.

Label Studio's review and agreement features are Enterprise-only, so the report computes its
own figures: box agreement by IoU with one-to-one matching, Cohen's kappa for two annotators
and Krippendorff's alpha (nominal) for any number of annotators with missing values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from redaction.geometry import box_iou


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in any consistent unit (Label Studio uses percent of the image)."""

    x: float
    y: float
    w: float
    h: float
    label: str


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0.0 when neither has area."""
    return box_iou((a.x, a.y, a.w, a.h), (b.x, b.y, b.w, b.h))


@dataclass(frozen=True, slots=True)
class BoxMatch:
    """The one-to-one matching of two annotators' boxes on one image."""

    pairs: tuple[tuple[int, int, float], ...]  # (index in a, index in b, IoU)
    count_a: int
    count_b: int

    @property
    def matched(self) -> int:
        return len(self.pairs)


def match_boxes(
    a: Sequence[Box], b: Sequence[Box], *, threshold: float = 0.5, same_label: bool = False
) -> BoxMatch:
    """Greedy one-to-one matching by descending IoU, keeping pairs with IoU >= threshold.

    Greedy matching is what detection benchmarks (PASCAL VOC, COCO) use; ties break by index,
    so the result is deterministic.
    """
    candidates = sorted(
        (
            (iou(box_a, box_b), i, j)
            for i, box_a in enumerate(a)
            for j, box_b in enumerate(b)
            if not same_label or box_a.label == box_b.label
        ),
        key=lambda c: (-c[0], c[1], c[2]),
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs: list[tuple[int, int, float]] = []
    for overlap, i, j in candidates:
        if overlap < threshold:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        pairs.append((i, j, overlap))
    return BoxMatch(pairs=tuple(sorted(pairs)), count_a=len(a), count_b=len(b))


@dataclass(frozen=True, slots=True)
class BoxAgreement:
    """Box agreement over many image/annotator-pair comparisons."""

    comparisons: int
    boxes: int  # boxes in all compared annotations (both sides)
    matched_pairs: int
    label_agreements: int  # matched pairs whose labels agree
    iou_sum: float

    @property
    def f1(self) -> float | None:
        """2 x matched / all boxes: 1.0 when both annotators drew the same boxes."""
        return 2 * self.matched_pairs / self.boxes if self.boxes else None

    @property
    def mean_iou(self) -> float | None:
        return self.iou_sum / self.matched_pairs if self.matched_pairs else None

    @property
    def label_agreement(self) -> float | None:
        return self.label_agreements / self.matched_pairs if self.matched_pairs else None


def box_agreement(
    images: Mapping[Hashable, Mapping[str, Sequence[Box]]], *, threshold: float = 0.5
) -> tuple[BoxAgreement, list[tuple[str, str]]]:
    """Compare every pair of annotators on every image both annotated.

    Returns the totals and, for matched pairs, the (label a, label b) pairs that feed a
    kappa on box labels.
    """
    comparisons = boxes = matched = agree = 0
    iou_sum = 0.0
    label_pairs: list[tuple[str, str]] = []
    for by_annotator in images.values():
        for first, second in combinations(sorted(by_annotator), 2):
            a, b = by_annotator[first], by_annotator[second]
            result = match_boxes(a, b, threshold=threshold)
            comparisons += 1
            boxes += result.count_a + result.count_b
            matched += result.matched
            for i, j, overlap in result.pairs:
                iou_sum += overlap
                label_pairs.append((a[i].label, b[j].label))
                agree += a[i].label == b[j].label
    return BoxAgreement(comparisons, boxes, matched, agree, iou_sum), label_pairs


def cohens_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa for two raters over the items both rated.

    None when it is undefined: no items, or chance agreement is 1 (both raters used one and
    the same category throughout, so agreement beyond chance cannot be measured).
    """
    return cohens_kappa_table(Counter(pairs))


def cohens_kappa_table(table: Mapping[tuple[Hashable, Hashable], int]) -> float | None:
    """Cohen's kappa from a contingency table {(rating a, rating b): items}."""
    n = sum(table.values())
    if n == 0:
        return None
    observed = sum(count for (a, b), count in table.items() if a == b) / n
    first: Counter[Hashable] = Counter()
    second: Counter[Hashable] = Counter()
    for (a, b), count in table.items():
        first[a] += count
        second[b] += count
    expected = sum(first[c] * second[c] for c in first) / (n * n)
    if expected == 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def krippendorff_alpha_nominal(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal data.

    `units` holds, per unit (item), the values the coders gave it; missing values are simply
    absent. Units with fewer than two values are not pairable and are dropped, as in
    Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability". None when undefined
    (fewer than two pairable values, or a single category overall).
    """
    return krippendorff_alpha_table(Counter(tuple(sorted(map(str, u))) for u in units))


def krippendorff_alpha_table(units: Mapping[tuple[str, ...], int]) -> float | None:
    """The same, from {sorted values of a unit: how many units had exactly those values}."""
    coincidence: dict[tuple[Hashable, Hashable], float] = {}
    for values, weight in units.items():
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_c - 1) if c == k else n_c * n_k
                if pairs:
                    add = weight * pairs / (m - 1)
                    coincidence[(c, k)] = coincidence.get((c, k), 0.0) + add
    marginals: dict[Hashable, float] = {}
    for (first, _), value in coincidence.items():
        marginals[first] = marginals.get(first, 0.0) + value
    n = sum(marginals.values())
    if n <= 1 or len(marginals) < 2:
        return None
    observed = sum(v for (c, k), v in coincidence.items() if c != k)
    expected = sum(marginals[c] * marginals[k] for c in marginals for k in marginals if c != k)
    return 1.0 - (n - 1) * observed / expected
