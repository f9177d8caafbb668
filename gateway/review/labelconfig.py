"""The review project's labelling configuration and what a reviewer's annotation says (pure).

Reviewers see the redacted rendition with the engine's regions drawn in as pre-annotations
(label "redacted by the gateway", ignored when they come back: removing an automatic region
is off, since a reviewer cannot see what lies under a blur). One box control serves both (Label
Studio draws with the first box control of an image); what reviewers draw with face, plate or
text becomes the asset's manual regions. One choice
decides: release, reject, or (no rendition yet) re-process. Hotkeys make a typical photo a
few seconds: F/P/T pick the box label, 1/2/3 the decision, Ctrl+Enter submits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.labelstudio.regions import rotated_bounds
from gateway.review.models import ReviewDecision

IMAGE = "image"
MISSED = "missed"
DECISION = "decision"
LABELS = {"face": "f", "plate": "p", "text": "t"}
CHOICES = {"release": "1", "reject": "2", "reprocess": "3"}
ENGINE_LABEL = "redacted by the gateway"
INSTRUCTIONS = (
    "<p><b>Privacy review.</b> This is the redacted copy the gateway made. Look for any face, "
    "licence plate or readable personal text that is still visible.</p><ul>"
    "<li>Draw a box over each one you find: press <b>F</b> (face), <b>P</b> (plate) or "
    "<b>T</b> (text), then drag over it.</li>"
    "<li>Then choose <b>1 release</b> (the gateway blurs your boxes as well and releases), "
    "<b>2 reject</b> (never released), or <b>3 re-process</b> (only offered when there is no "
    "redacted copy yet), and submit with <b>Ctrl+Enter</b>.</li>"
    "<li>Blue boxes are what the gateway already blurred; you cannot remove them.</li>"
    "<li>On an image the leak check quarantined, red boxes are where it still sees a face or "
    "plate: keep a box to have it redacted, delete it if nothing identifiable is there.</li>"
    "</ul>"
    "<p>Only reviewers named for this dataset decide; anyone else's answer is recorded and "
    "ignored.</p>"
)


def review_label_config() -> str:
    labels = "\n".join(
        f'    <Label value="{name}" hotkey="{key}" background="#e53935"/>'
        for name, key in LABELS.items()
    )
    choices = "\n".join(
        f'    <Choice value="{name}" hotkey="{key}"/>' for name, key in CHOICES.items()
    )
    return (
        "<View>\n"
        '  <Header value="$review_note" size="5"/>\n'
        f'  <Image name="{IMAGE}" value="$image" zoom="true"/>\n'
        f'  <RectangleLabels name="{MISSED}" toName="{IMAGE}" showInline="true">\n'
        f"{labels}\n"
        f'    <Label value="{ENGINE_LABEL}" background="#1e88e5"/>\n'
        "  </RectangleLabels>\n"
        f'  <Choices name="{DECISION}" toName="{IMAGE}" choice="single-radio" '
        'required="true" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


@dataclass(frozen=True, slots=True)
class ManualBox:
    """A reviewer's box in pixels of the image (Label Studio's percentages, unrounded)."""

    label: str
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True, slots=True)
class ReviewAnswer:
    decision: ReviewDecision | None
    boxes: tuple[ManualBox, ...]

    def findings(self) -> dict[str, int]:
        counts = dict.fromkeys(LABELS, 0)
        for box in self.boxes:
            counts[box.label] += 1
        return counts


_DECISIONS = {
    "release": ReviewDecision.RELEASED,
    "reject": ReviewDecision.REJECTED,
    "reprocess": ReviewDecision.REPROCESS,
}


def read_answer(result: list[Any], *, width: int, height: int) -> ReviewAnswer:
    """The decision and the reviewer's boxes in an annotation result; the engine's regions
    and anything unknown are ignored. Sizes come from the result when it carries them."""
    decision: ReviewDecision | None = None
    boxes: list[ManualBox] = []
    for item in result:
        if not isinstance(item, dict):
            continue
        value = item.get("value") if isinstance(item.get("value"), dict) else {}
        assert isinstance(value, dict)  # noqa: S101 (narrowing for mypy)
        if item.get("from_name") == DECISION:
            picked = [str(c) for c in value.get("choices") or []]
            decision = _DECISIONS.get(picked[0]) if len(picked) == 1 else None
        elif item.get("from_name") == MISSED:
            boxes += _boxes(item, value, width, height)
    return ReviewAnswer(decision, tuple(boxes))


def _boxes(item: dict[str, Any], value: dict[str, Any], width: int, height: int) -> list[ManualBox]:
    w = float(item.get("original_width") or width)
    h = float(item.get("original_height") or height)
    try:
        x, y, bw, bh = rotated_bounds(value)
    except (KeyError, TypeError, ValueError):
        return []
    sx, sy = width / w, height / h  # the image the reviewer saw is the asset's own size
    return [
        ManualBox(
            str(label), x * w / 100 * sx, y * h / 100 * sy, bw * w / 100 * sx, bh * h / 100 * sy
        )
        for label in value.get("rectanglelabels") or []
        if label in LABELS
    ]


def engine_prediction(
    regions: list[dict[str, Any]],
    *,
    width: int,
    height: int,
    leak_hits: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The engine's regions (pixels) as a Label Studio prediction on the `engine` control,
    and a leak-check quarantine's persisting hits as boxes with their own label (face or
    plate): a reviewer keeps one to have it redacted, or deletes it."""
    result = [_box(f"engine-{i}", r, ENGINE_LABEL, width, height) for i, r in enumerate(regions)]
    result += [
        _box(f"leak-{i}", h, h["label"] if h.get("label") in LABELS else "face", width, height)
        for i, h in enumerate(leak_hits or [])
    ]
    return {"model_version": "gateway-engine", "score": 1.0, "result": result}


def _box(ident: str, r: dict[str, Any], label: str, width: int, height: int) -> dict[str, Any]:
    return {
        "id": ident,
        "from_name": MISSED,
        "to_name": IMAGE,
        "type": "rectanglelabels",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {
            "x": 100 * r["x"] / width,
            "y": 100 * r["y"] / height,
            "width": 100 * r["w"] / width,
            "height": 100 * r["h"] / height,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }
