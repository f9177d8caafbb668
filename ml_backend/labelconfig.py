"""Reading a Label Studio labelling config: which image the project labels, with which controls.

The XML comes from Label Studio (which takes it from project admins), so it is parsed with
`defusedxml` (no entities, no external references) and bounded in size. A config the backend
cannot serve is not an error for Label Studio: `UnsupportedConfig` says why, and the caller
returns no predictions with a log line.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from xml.etree.ElementTree import Element

from defusedxml import ElementTree  # type: ignore[import-untyped]
from defusedxml.common import DefusedXmlException  # type: ignore[import-untyped]

MAX_CONFIG_BYTES = 256 * 1024


class UnsupportedConfig(Exception):
    """The config has nothing this backend can predict for (the message says why)."""


class ControlKind(StrEnum):
    RECTANGLE = "rectanglelabels"
    POLYGON = "polygonlabels"
    KEYPOINT = "keypointlabels"
    BRUSH = "brushlabels"
    CHOICES = "choices"


_CHILD_TAG = {
    ControlKind.RECTANGLE: "label",
    ControlKind.POLYGON: "label",
    ControlKind.KEYPOINT: "label",
    ControlKind.BRUSH: "label",
    ControlKind.CHOICES: "choice",
}


@dataclass(frozen=True, slots=True)
class LabelSpec:
    value: str
    predicted_values: tuple[str, ...] = ()
    """Model classes named on the tag itself (`predicted_values="person,pedestrian"`)."""


@dataclass(frozen=True, slots=True)
class ControlSpec:
    kind: ControlKind
    name: str
    to_name: str
    labels: tuple[LabelSpec, ...]
    single_choice: bool = True
    smart: bool = False


@dataclass(frozen=True, slots=True)
class ProjectSchema:
    image_name: str
    controls: tuple[ControlSpec, ...]

    def of_kind(self, *kinds: ControlKind) -> tuple[ControlSpec, ...]:
        return tuple(c for c in self.controls if c.kind in kinds)


def parse_label_config(xml: str) -> ProjectSchema:
    """The first single-image object and the supported controls pointing at it."""
    if not xml or not xml.strip():
        raise UnsupportedConfig("the labelling config is empty")
    if len(xml.encode()) > MAX_CONFIG_BYTES:
        raise UnsupportedConfig(f"the labelling config is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        root = ElementTree.fromstring(xml)
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        raise UnsupportedConfig(f"the labelling config is not well-formed XML: {exc}") from exc
    images = [
        el
        for el in root.iter()
        if _tag(el) == "image" and el.get("name") and not el.get("valueList")
    ]
    if not images:
        raise UnsupportedConfig("the labelling config has no single-image <Image> object")
    image_names = {str(el.get("name")) for el in images}
    controls: list[ControlSpec] = []
    for el in root.iter():
        kind = _kind(el)
        if kind is None:
            continue
        targets = [t.strip() for t in (el.get("toName") or "").split(",") if t.strip()]
        target = next((t for t in targets if t in image_names), None)
        name = el.get("name")
        if target is None or not name:
            continue
        labels = tuple(_label(child) for child in el.iter() if _tag(child) == _CHILD_TAG[kind])
        labels = tuple(label for label in labels if label.value)
        if not labels:
            continue
        controls.append(
            ControlSpec(
                kind=kind,
                name=name,
                to_name=target,
                labels=labels,
                single_choice=(el.get("choice") or "single").lower() != "multiple",
                smart=(el.get("smart") or "").lower() == "true",
            )
        )
    if not controls:
        raise UnsupportedConfig(
            "no RectangleLabels, PolygonLabels, KeyPointLabels, BrushLabels or Choices control "
            "with labels points at an image"
        )
    first_target = controls[0].to_name
    return ProjectSchema(
        image_name=first_target,
        controls=tuple(c for c in controls if c.to_name == first_target),
    )


def _tag(el: Element) -> str:
    tag = el.tag if isinstance(el.tag, str) else ""
    return tag.rsplit("}", 1)[-1].lower()


def _kind(el: Element) -> ControlKind | None:
    try:
        return ControlKind(_tag(el))
    except ValueError:
        return None


def _label(el: Element) -> LabelSpec:
    value = (el.get("value") or el.get("alias") or "").strip()
    predicted = tuple(p.strip() for p in (el.get("predicted_values") or "").split(",") if p.strip())
    return LabelSpec(value=value, predicted_values=predicted)
