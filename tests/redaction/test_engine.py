"""The engine (redaction.engine): detectors -> grown regions -> operator -> leak check.

Images are drawn with OpenCV. RetinaFace finds drawn faces, so it plays the real face detector
here; stub detectors (same `Detector` protocol) pin down the engine's decisions exactly.
"""

from __future__ import annotations

import io as pyio
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest
from PIL import Image

from redaction.detectors.base import ModelInfo
from redaction.engine import Status, grow, redact, redact_bytes
from redaction.errors import UnsupportedFormat
from redaction.leakcheck import coverage, mask_of
from redaction.policy import LeakCheckPolicy, Limits, PlatePolicy, RedactionPolicy
from redaction.registry import DetectorSet
from redaction.types import BGRImage, DecodedImage, ImageFormat, Label, Region

STUB_MODEL = ModelInfo("stub", "none", "tests", "0", "0" * 64, "Apache-2.0")
FACES_ONLY = RedactionPolicy(plates=PlatePolicy(enabled=False))
NO_LEAK = FACES_ONLY.model_copy(update={"leak_check": LeakCheckPolicy(enabled=False)})


@dataclass
class Stub:
    """Returns scripted regions: `answers[i]` on the i-th call, the last one afterwards."""

    answers: list[list[Region]]
    name: str = "stub"
    model: ModelInfo = STUB_MODEL
    calls: int = 0
    seen: list[BGRImage] = field(default_factory=list)

    def detect(self, image: BGRImage) -> list[Region]:
        self.seen.append(image.copy())
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return list(answer)


@dataclass
class Broken:
    error: Callable[[BGRImage], list[Region]]
    name: str = "broken"
    model: ModelInfo = STUB_MODEL

    def detect(self, image: BGRImage) -> list[Region]:
        return self.error(image)


def raising(error: BaseException) -> Callable[[BGRImage], list[Region]]:
    def detect(_image: BGRImage) -> list[Region]:
        raise error

    return detect


def textured(height: int = 240, width: int = 320, seed: int = 1) -> BGRImage:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height // 4, width // 4, 3), dtype=np.uint8)
    return np.asarray(cv2.resize(noise, (width, height), interpolation=cv2.INTER_NEAREST))


def draw_face(img: BGRImage, cx: int, cy: int, s: int) -> None:
    """A cartoon face RetinaFace recognises: skin oval, hair, eyes, brows, nose, mouth."""
    cv2.ellipse(img, (cx, cy), (int(s * 0.8), s), 0, 0, 360, (140, 170, 220), -1)
    cv2.ellipse(img, (cx, cy - int(s * 0.9)), (int(s * 0.85), int(s * 0.45)), 0, 180, 360,
                (30, 40, 60), -1)  # fmt: skip
    for dx in (-1, 1):
        ex, ey = cx + dx * int(s * 0.35), cy - int(s * 0.2)
        cv2.ellipse(img, (ex, ey), (int(s * 0.16), int(s * 0.08)), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, (ex, ey), int(s * 0.07), (40, 30, 20), -1)
        brow = max(2, int(s * 0.05))
        cv2.line(img, (ex - int(s * 0.18), ey - int(s * 0.18)), (ex + int(s * 0.18),
                 ey - int(s * 0.2)), (30, 40, 60), brow)  # fmt: skip
    cv2.line(img, (cx, cy - int(s * 0.1)), (cx - int(s * 0.08), cy + int(s * 0.2)),
             (100, 120, 170), max(2, int(s * 0.04)))  # fmt: skip
    cv2.ellipse(img, (cx, cy + int(s * 0.45)), (int(s * 0.28), int(s * 0.1)), 0, 0, 180,
                (60, 60, 170), max(2, int(s * 0.05)))  # fmt: skip


def decoded(pixels: BGRImage) -> DecodedImage:
    return DecodedImage(pixels=pixels, source_format=ImageFormat.PNG, orientation_applied=1)


def face(x: int, y: int, w: int, h: int, score: float = 0.9) -> Region:
    return Region(Label.FACE, x, y, w, h, score, "stub")


def union_mask(shape: tuple[int, ...], regions: tuple[Region, ...]) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    for r in regions:
        mask[r.y : r.y + r.h, r.x : r.x + r.w] = True
    return mask


def changed(a: BGRImage, b: BGRImage) -> np.ndarray:
    return np.asarray((a != b).any(axis=2))


@pytest.fixture(scope="module")
def retinaface() -> object:
    from redaction.detectors.retinaface import RetinaFaceDetector

    return RetinaFaceDetector(threshold=0.5)


# --------------------------------------------------------------------------- masking


def test_changed_inside_every_region_and_nothing_outside() -> None:
    image = textured()
    original = image.copy()
    faces = Stub([[face(40, 40, 60, 80), face(200, 100, 30, 30)]])
    result = redact(decoded(image), policy=NO_LEAK, detectors=DetectorSet(faces=faces))
    assert result.status is Status.RELEASED and result.pixels is not None
    assert np.array_equal(image, original), "the input must not be mutated"
    assert len(result.regions) == 2
    for r in result.regions:  # grown by the 30% face margin
        assert r.w > 60 * 1.5 or r.w > 30 * 1.5
        inner = changed(result.pixels, original)[r.y + r.h // 4 : r.y + 3 * r.h // 4,
                                                  r.x + r.w // 4 : r.x + 3 * r.w // 4]  # fmt: skip
        assert inner.mean() > 0.9
    outside = ~union_mask(original.shape, result.regions)
    assert not changed(result.pixels, original)[outside].any()


def test_face_margin_is_a_share_plus_pixels_and_smaller_above_the_box() -> None:
    policy = RedactionPolicy()  # 25% + 2 px a side, 40% of that above the box
    detected = Region(Label.FACE, 100, 100, 40, 40, 0.9, "stub")
    grown = grow(detected, policy=policy, width=320, height=240)
    assert (grown.x, grown.y, grown.w, grown.h) == (88, 95, 64, 57)
    # the ellipse the operator paints still covers almost all of the detected box
    ellipse = mask_of([grown], width=320, height=240, ellipse_labels=frozenset({Label.FACE}))
    assert coverage(detected, ellipse) >= 0.9
    tiny = grow(Region(Label.FACE, 50, 50, 6, 6, 0.2, "stub"), policy=policy, width=320, height=240)
    assert (tiny.x, tiny.y, tiny.w, tiny.h) == (46, 49, 14, 11)  # pixels matter for tiny faces


def test_plate_margin_is_a_share_of_the_box_height() -> None:
    policy = RedactionPolicy(plates=PlatePolicy(margin=0.5))
    plate = Region(Label.PLATE, 100, 100, 80, 20, 0.9, "stub")
    grown = grow(plate, policy=policy, width=320, height=240)
    assert (grown.x, grown.y, grown.w, grown.h) == (90, 90, 100, 40)
    edge = grow(Region(Label.PLATE, 0, 230, 80, 20, 0.9, "s"), policy=policy, width=320, height=240)
    assert (edge.x, edge.y, edge.w, edge.h) == (0, 220, 90, 20)


@pytest.mark.integration
def test_real_face_detector_masks_a_drawn_face(retinaface: object) -> None:
    image = textured(360, 480)
    draw_face(image, 150, 180, 70)
    faces = Stub([[]])  # the leak check's detector here: finds nothing more
    detectors = DetectorSet(faces=retinaface, leak_faces=faces)  # type: ignore[arg-type]
    result = redact(decoded(image), policy=FACES_ONLY, detectors=detectors)
    assert result.status is Status.RELEASED and result.pixels is not None
    assert [r.label for r in result.detections] == [Label.FACE]
    diff = changed(result.pixels, image)
    assert diff[150:210, 120:180].mean() > 0.95  # the face's centre
    assert not diff[~union_mask(image.shape, result.regions)].any()
    assert result.models[0]["licence"] == "MIT" and len(result.models[0]["sha256"]) == 64


@pytest.mark.integration
def test_exif_orientation_six_is_redacted_where_the_face_is_shown(retinaface: object) -> None:
    upright = textured(480, 360)
    draw_face(upright, 180, 140, 60)
    # Store the pixels rotated 90 degrees counter-clockwise and tag them "rotate 90 CW to view".
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = pyio.BytesIO()
    Image.fromarray(stored[:, :, ::-1]).save(buffer, format="PNG", exif=exif)
    detectors = DetectorSet(faces=retinaface, leak_faces=Stub([[]]))  # type: ignore[arg-type]
    out = redact_bytes(buffer.getvalue(), policy=FACES_ONLY, detectors=detectors,
                       output_format=ImageFormat.PNG)  # fmt: skip
    assert out.result.status is Status.RELEASED and out.data is not None
    shown = cv2.imdecode(np.frombuffer(out.data, np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape == upright.shape
    diff = changed(shown, upright)
    assert diff[110:170, 150:210].mean() > 0.95, "the face, where the viewer sees it"
    assert not diff[400:, :].any() and not diff[:, 300:].any()


# --------------------------------------------------------------------------- failing closed


@pytest.mark.parametrize(
    "failure",
    [
        raising(RuntimeError("onnxruntime exploded")),
        lambda image: image.__setitem__((0, 0), 0),  # writing the shared pixels is refused
        lambda _image: None,  # not a list of regions
    ],
    ids=["raises", "mutates-input", "returns-garbage"],
)
def test_detector_failure_quarantines_without_pixels(failure: Callable[[BGRImage], object]) -> None:
    image = textured()
    detectors = DetectorSet(faces=Broken(failure), leak_faces=Stub([[]]))  # type: ignore[arg-type]
    result = redact(decoded(image), policy=FACES_ONLY, detectors=detectors)
    assert result.status is Status.QUARANTINED
    assert result.pixels is None and not result.released
    assert [r.code for r in result.reasons] == ["detector-failed"]
    assert result.reasons[0].details["role"] == "faces"


def test_detector_failure_through_bytes_writes_nothing() -> None:
    ok, png = cv2.imencode(".png", textured())
    assert ok
    broken = Broken(raising(MemoryError()))
    detectors = DetectorSet(faces=broken, leak_faces=Stub([[]]))  # type: ignore[arg-type]
    out = redact_bytes(png.tobytes(), policy=FACES_ONLY, detectors=detectors)
    assert out.data is None and out.result.status is Status.QUARANTINED


def test_missing_detector_for_an_enabled_role_quarantines() -> None:
    result = redact(decoded(textured()), policy=RedactionPolicy(), detectors=DetectorSet())
    assert result.status is Status.QUARANTINED
    assert result.reasons[0].code == "detector-missing"
    assert set(result.reasons[0].details["roles"]) == {"faces", "plates", "leak_faces"}


def test_input_errors_propagate_typed() -> None:
    with pytest.raises(UnsupportedFormat):
        redact_bytes(b"GIF89a" + b"\0" * 64, policy=FACES_ONLY, detectors=DetectorSet())


def test_limits_come_from_the_policy() -> None:
    from redaction.errors import ImageTooLarge

    _, png = cv2.imencode(".png", textured())
    small = FACES_ONLY.model_copy(update={"limits": Limits(max_pixels=1000)})
    with pytest.raises(ImageTooLarge):
        redact_bytes(png.tobytes(), policy=small, detectors=DetectorSet())


# --------------------------------------------------------------------------- leak check


def test_leak_inside_a_mask_is_strengthened_to_fill() -> None:
    image = textured()
    primary = Stub([[face(100, 80, 60, 60)]])
    # The second detector still sees the face through the blur once, then nothing.
    leak = Stub([[face(105, 85, 50, 50, 0.7)], []])
    result = redact(
        decoded(image), policy=FACES_ONLY, detectors=DetectorSet(faces=primary, leak_faces=leak)
    )
    assert result.status is Status.RELEASED and result.pixels is not None
    report = result.leak_check
    assert report.passed and report.rounds == 2
    assert [h.inside for h in report.hits] == [True]
    grown = grow(primary.answers[0][0], policy=FACES_ONLY, width=320, height=240)
    assert grown in report.strengthened
    box = result.pixels[grown.y : grown.y + grown.h, grown.x : grown.x + grown.w]
    assert (box == 0).all(), "the whole grown box is painted solid"
    assert not changed(result.pixels, image)[~union_mask(image.shape, result.regions)].any()


def test_leak_outside_the_masks_is_redacted_and_checked_again() -> None:
    image = textured()
    primary = Stub([[face(20, 20, 40, 40)]])
    missed = face(220, 120, 40, 50, 0.8)
    leak = Stub([[missed], []])
    result = redact(
        decoded(image), policy=FACES_ONLY, detectors=DetectorSet(faces=primary, leak_faces=leak)
    )
    assert result.status is Status.RELEASED and result.pixels is not None
    assert result.leak_check.rounds == 2 and len(result.leak_check.added) == 1
    added = result.leak_check.added[0]
    assert added.x < missed.x and added.w > missed.w  # grown by the face margin
    assert changed(result.pixels, image)[130:160, 230:250].all()
    assert not np.array_equal(leak.seen[1], leak.seen[0]), "checked again on the fixed output"


def test_leak_that_persists_quarantines_with_evidence() -> None:
    stubborn = face(220, 120, 40, 50, 0.95)
    leak = Stub([[stubborn]])
    result = redact(
        decoded(textured()),
        policy=FACES_ONLY,
        detectors=DetectorSet(faces=Stub([[]]), leak_faces=leak),
    )
    assert result.status is Status.QUARANTINED and result.pixels is None
    assert result.leak_check.rounds == FACES_ONLY.leak_check.max_rounds + 1
    reason = result.reasons[0]
    assert reason.code == "leak-detected"
    evidence = reason.details["hits"]
    assert isinstance(evidence, list) and evidence[0]["detector"] == "stub"
    assert evidence[0]["score"] == 0.95 and evidence[0]["x"] == 220


def test_leak_detector_failure_quarantines() -> None:
    broken = Broken(raising(RuntimeError("boom")))
    detectors = DetectorSet(faces=Stub([[]]), leak_faces=broken)  # type: ignore[arg-type]
    result = redact(decoded(textured()), policy=FACES_ONLY, detectors=detectors)
    assert result.status is Status.QUARANTINED and result.pixels is None
    assert result.reasons[0].code == "detector-failed"
    assert result.reasons[0].details["role"] == "leak_check"


def test_result_serialises_without_pixels() -> None:
    result = redact(
        decoded(textured()),
        policy=FACES_ONLY,
        detectors=DetectorSet(faces=Stub([[face(10, 10, 30, 30)]]), leak_faces=Stub([[]])),
    )
    plain = result.as_dict()
    assert plain["status"] == "released" and "pixels" not in plain
    assert set(plain["timings_ms"]) >= {"faces", "operator", "leak_check", "total"}  # type: ignore[arg-type]
    assert plain["regions"][0]["label"] == "face"  # type: ignore[index]
