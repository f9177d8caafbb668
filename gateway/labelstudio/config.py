"""The labelling configuration Label Studio shows annotators, generated from the dataset's
ontology: one control per kind of label, image-level choices, and the privacy flag with which
an annotator reports a face, plate or personal text that is still visible."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from xml.sax.saxutils import quoteattr

from gateway.datasets import ControlType, Ontology

IMAGE_NAME = "image"
PRIVACY_FLAG_NAME = "privacy_flag"
PRIVACY_FLAG_VALUES = ("face visible", "licence plate visible", "personal text visible")
# shown the moment an annotator ticks the flag (Label Studio's visibleWhen), so they know
# what Submit does; after Submit the task leaves their list
FLAG_RECEIVED = (
    "Privacy flag noted. When you submit, this image is withdrawn from the project at once "
    "and goes to a privacy reviewer; you will not see it again. Thank you."
)
_CONTROL_TAG = {
    ControlType.BOX: ("RectangleLabels", "Label"),
    ControlType.POLYGON: ("PolygonLabels", "Label"),
    ControlType.BRUSH: ("BrushLabels", "Label"),
    ControlType.KEYPOINT: ("KeyPointLabels", "Label"),
    ControlType.CHOICE: ("Choices", "Choice"),
}
_CONTROL_NAME = {
    ControlType.BOX: "boxes",
    ControlType.POLYGON: "polygons",
    ControlType.BRUSH: "brush",
    ControlType.KEYPOINT: "keypoints",
    ControlType.CHOICE: "image_labels",
}


def label_config(ontology: Ontology) -> str:
    """Label Studio XML for the ontology (deterministic: same ontology, same text)."""
    groups: dict[ControlType, list[str]] = defaultdict(list)
    for label in ontology.labels:
        groups[ControlType(label.control)].append(label.name)
    lines = [
        "<View>",
        f'  <Image name={quoteattr(IMAGE_NAME)} value="$image" zoom="true"/>',
        # right under the image, where the annotator looks, not below the fold with the flag
        f'  <View visibleWhen="choice-selected" whenTagName={quoteattr(PRIVACY_FLAG_NAME)}>',
        f'    <Header value={quoteattr(FLAG_RECEIVED)} size="5"/>',
        "  </View>",
    ]
    for control in ControlType:  # fixed order, independent of the ontology's order
        if control not in groups:
            continue
        tag, item = _CONTROL_TAG[control]
        extra = ' choice="multiple"' if control is ControlType.CHOICE else ""
        lines.append(
            f"  <{tag} name={quoteattr(_CONTROL_NAME[control])} toName={quoteattr(IMAGE_NAME)}"
            f"{extra}>"
        )
        lines += [
            f"    <{item} value={quoteattr(name)}{_index(control, i)}/>"
            for i, name in enumerate(groups[control])
        ]
        lines.append(f"  </{tag}>")
    lines += [
        '  <Header value="Privacy: does this image still show a face, a licence plate or'
        ' personal text? Flag it and it is withdrawn at once."/>',
        f"  <Choices name={quoteattr(PRIVACY_FLAG_NAME)} toName={quoteattr(IMAGE_NAME)}"
        ' choice="multiple">',
        *[f"    <Choice value={quoteattr(v)}/>" for v in PRIVACY_FLAG_VALUES],
        "  </Choices>",
        "</View>",
    ]
    return "\n".join(lines) + "\n"


def _index(control: ControlType, position: int) -> str:
    """Keypoints carry their order (Label Studio's converter writes COCO keypoints by it)."""
    return f' model_index="{position}"' if control is ControlType.KEYPOINT else ""


def privacy_flags(result: list[dict[str, Any]]) -> list[str]:
    """The privacy-flag choices an annotation carries (empty: no flag)."""
    flags: list[str] = []
    for item in result:
        if item.get("from_name") != PRIVACY_FLAG_NAME:
            continue
        choices = (item.get("value") or {}).get("choices") or []
        flags += [str(c) for c in choices]
    return sorted(set(flags))


def control_of(from_name: str) -> ControlType | None:
    for control, name in _CONTROL_NAME.items():
        if name == from_name:
            return control
    return None


def parse_ontology(document: dict[str, Any]) -> Ontology:
    return Ontology.model_validate(document)
