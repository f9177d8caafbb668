"""The leak check: a second, independent detector looks at the redacted OUTPUT.

Each hit of a leak detector (RetinaFace for faces; optionally the plate detector again) is
classified against the masks that were actually applied:

- **inside**: at least `INSIDE_COVERAGE` (50%) of the hit's box lies on masked pixels (the
  ellipse for faces, the box otherwise). The detector still sees a face or a plate through our
  mask, so the operator was too weak there: the applied regions under the hit's centre, and
  the hit's own box, are painted solid (fill). Such a region is never released as it was.
- **outside**: less than that. The primary detector missed something (or masked only part of
  it): the hit's box, grown by the policy margin, is masked with the policy operator.

Then the output is checked again. After `max_rounds` rounds of fixes a final pass must find
nothing; if hits persist, the check fails and the engine quarantines the asset with the hits as
evidence. Coverage rather than IoU decides "inside" because a detector's box on a blurred face
is often smaller or larger than our grown box; what matters is whether it is looking at pixels
we already replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from redaction import operators
from redaction.detectors.base import Detector
from redaction.policy import Operator, RedactionPolicy
from redaction.types import BGRImage, Label, Region

INSIDE_COVERAGE = 0.5
"""Share of a hit's box on masked pixels above which the hit is 'inside' an applied mask."""

Mask = npt.NDArray[np.bool_]
RunDetector = Callable[[Detector, BGRImage, str], list[Region]]
GrowRegion = Callable[[Region], Region]


@dataclass(frozen=True, slots=True)
class LeakHit:
    region: Region
    coverage: float
    """Share of the hit's box on pixels masked before this round."""
    round: int

    @property
    def inside(self) -> bool:
        return self.coverage >= INSIDE_COVERAGE

    def as_dict(self) -> dict[str, object]:
        return {
            **self.region.as_dict(),
            "coverage": round(self.coverage, 4),
            "inside": self.inside,
            "round": self.round,
        }


@dataclass(frozen=True, slots=True)
class LeakCheckReport:
    enabled: bool
    passed: bool
    rounds: int = 0
    detectors: tuple[str, ...] = ()
    hits: tuple[LeakHit, ...] = ()
    strengthened: tuple[Region, ...] = ()
    """Regions repainted solid because a leak detector still saw something through them."""
    added: tuple[Region, ...] = ()
    """Regions masked because a leak detector found something the primary detectors missed."""
    persisting: tuple[LeakHit, ...] = field(default=())
    """Hits still present after the last round: the evidence for quarantine."""

    def as_dict(self) -> dict[str, object]:
        return {
            "enabled": self.enabled,
            "passed": self.passed,
            "rounds": self.rounds,
            "detectors": list(self.detectors),
            "hits_inside": [h.as_dict() for h in self.hits if h.inside],
            "hits_outside": [h.as_dict() for h in self.hits if not h.inside],
            "strengthened": [r.as_dict() for r in self.strengthened],
            "added": [r.as_dict() for r in self.added],
            "persisting": [h.as_dict() for h in self.persisting],
        }


@dataclass(frozen=True, slots=True)
class LeakCheckOutcome:
    pixels: BGRImage
    regions: tuple[Region, ...]
    """Every region masked, including those the check added or strengthened."""
    report: LeakCheckReport
    elapsed_ms: float


def mask_of(
    regions: Sequence[Region], *, width: int, height: int, ellipse_labels: frozenset[Label]
) -> Mask:
    """The pixels `operators.apply` changes for these regions (ellipse or whole box)."""
    mask = np.zeros((height, width), np.bool_)
    for r in regions:
        x0, y0 = max(0, r.x), max(0, r.y)
        x1, y1 = min(width, r.x + r.w), min(height, r.y + r.h)
        if x1 <= x0 or y1 <= y0:
            continue
        if r.label in ellipse_labels and min(x1 - x0, y1 - y0) >= operators.ELLIPSE_MIN_SIDE:
            xs = (np.arange(x0, x1, dtype=np.float32) + 0.5 - (r.x + r.w / 2)) / (r.w / 2)
            ys = (np.arange(y0, y1, dtype=np.float32) + 0.5 - (r.y + r.h / 2)) / (r.h / 2)
            mask[y0:y1, x0:x1] |= (ys[:, None] ** 2 + xs[None, :] ** 2) <= 1.0
        else:
            mask[y0:y1, x0:x1] = True
    return mask


def coverage(region: Region, mask: Mask) -> float:
    """Share of `region`'s (in-image) box that lies on masked pixels; 1.0 for an empty box."""
    height, width = mask.shape
    x0, y0 = max(0, region.x), max(0, region.y)
    x1, y1 = min(width, region.x + region.w), min(height, region.y + region.h)
    if x1 <= x0 or y1 <= y0:
        return 1.0
    return float(mask[y0:y1, x0:x1].mean())


def _contains_centre(region: Region, hit: Region) -> bool:
    """Whether the hit's centre lies in `region`: the mask the detector looked through. (Every
    region merely touching the hit would black out whole crowds for one weak blur.)"""
    cx, cy = hit.x + hit.w / 2, hit.y + hit.h / 2
    return region.x <= cx < region.x + region.w and region.y <= cy < region.y + region.h


@dataclass(slots=True)
class _State:
    pixels: BGRImage
    applied: list[Region]
    filled: list[Region] = field(default_factory=list)
    added: list[Region] = field(default_factory=list)
    hits: list[LeakHit] = field(default_factory=list)


def check_leaks(
    redacted: BGRImage,
    applied: Sequence[Region],
    *,
    policy: RedactionPolicy,
    detectors: Sequence[Detector],
    run_detector: RunDetector,
    grow: GrowRegion,
) -> LeakCheckOutcome:
    """Look for faces/plates left in `redacted`, fix what can be fixed, report what persists.

    `run_detector(detector, pixels, role)` runs one detector (raising `DetectorFailed` on any
    error); `grow` applies the policy margin to a hit before it is masked.
    """
    start = time.perf_counter()
    height, width = redacted.shape[:2]
    ellipse = frozenset({Label.FACE}) if policy.faces.ellipse else frozenset()
    state = _State(pixels=redacted, applied=list(applied))
    max_rounds = policy.leak_check.max_rounds
    persisting: list[LeakHit] = []
    rounds = 0
    for number in range(1, max_rounds + 2):  # max_rounds fixing rounds + a final check
        rounds = number
        seen = [r for det in detectors for r in run_detector(det, state.pixels, "leak_check")]
        found: list[LeakHit] = []
        if seen:  # the mask only classifies hits: most outputs have none
            mask = mask_of(state.applied, width=width, height=height, ellipse_labels=ellipse)
            mask |= mask_of(state.filled, width=width, height=height, ellipse_labels=frozenset())
            found = [LeakHit(region, coverage(region, mask), number) for region in seen]
        state.hits.extend(found)
        if not found:
            break
        if number > max_rounds:
            persisting = found
            break
        _fix(state, found, policy=policy, ellipse=ellipse, grow=grow)
    report = LeakCheckReport(
        enabled=True,
        passed=not persisting,
        rounds=rounds,
        detectors=tuple(d.name for d in detectors),
        hits=tuple(state.hits),
        strengthened=tuple(state.filled),
        added=tuple(state.added),
        persisting=tuple(persisting),
    )
    regions = (*state.applied, *(r for r in state.filled if r not in state.applied))
    elapsed = (time.perf_counter() - start) * 1000
    return LeakCheckOutcome(state.pixels, regions, report, elapsed)


def _fix(
    state: _State,
    hits: Sequence[LeakHit],
    *,
    policy: RedactionPolicy,
    ellipse: frozenset[Label],
    grow: GrowRegion,
) -> None:
    height, width = state.pixels.shape[:2]
    new = [grow(h.region) for h in hits if not h.inside]
    new = [r for r in new if r.w > 0 and r.h > 0]
    to_fill: list[Region] = []
    for hit in (h for h in hits if h.inside):
        to_fill.extend(r for r in state.applied if _contains_centre(r, hit.region))
        to_fill.append(hit.region.expanded(0.0, width=width, height=height))
    to_fill = [r for r in dict.fromkeys(to_fill) if r not in state.filled]
    pixels = operators.apply(state.pixels, new, operator=policy.operator, ellipse_labels=ellipse)
    pixels = operators.apply(pixels, to_fill, operator=Operator.FILL, ellipse_labels=frozenset())
    state.pixels = pixels
    state.applied.extend(new)
    state.added.extend(new)
    state.filled.extend(to_fill)
