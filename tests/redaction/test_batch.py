"""Directory redaction (redaction.batch) and policy files (redaction.policy_file)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from redaction.batch import BatchError, output_name, redact_directory
from redaction.detectors.base import ModelInfo
from redaction.policy import LeakCheckPolicy, Operator, PlatePolicy, RedactionPolicy
from redaction.policy_file import PolicyFileError, load_policy_file
from redaction.registry import DetectorNames, register_detector
from redaction.types import BGRImage, ImageFormat, Label, Region

BOX = (20, 16, 40, 40)
HANG = (0, 0, 255)
POLICY = RedactionPolicy(
    plates=PlatePolicy(enabled=False),
    leak_check=LeakCheckPolicy(enabled=False),
    operator=Operator.FILL,
    timeout_seconds=2,
)
NAMES = DetectorNames(faces="test-box", leak_faces="test-box")

pytestmark = pytest.mark.timeout(120)


class BoxDetector:
    """Reports one face at BOX; blocks forever when the top-left pixel is HANG."""

    name = "test-box"
    model = ModelInfo("box", "none", "tests", "0", "0" * 64, "Apache-2.0")

    def detect(self, image: BGRImage) -> list[Region]:
        if tuple(int(v) for v in image[0, 0]) == HANG:
            threading.Event().wait()
        return [Region(Label.FACE, *BOX, 0.8, self.name)]


def box_factory(policy: RedactionPolicy, threads: int) -> BoxDetector:
    return BoxDetector()


def register_box() -> None:
    register_detector("test-box", box_factory, replace=True)


def picture(seed: int, corner: tuple[int, int, int] | None = None) -> BGRImage:
    rng = np.random.default_rng(seed)
    image = rng.integers(30, 220, (120, 160, 3), dtype=np.uint8)
    if corner is not None:
        image[0, 0] = corner
    return image


def write(path: Path, image: BGRImage, ext: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(ext, image)
    assert ok
    path.write_bytes(data.tobytes())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    write(src / "a.jpg", picture(1), ".jpg")
    write(src / "nested" / "deeper" / "b.png", picture(2), ".png")
    write(src / "nested" / "frame.jpg", picture(3), ".png")  # PNG data behind a .jpg name
    write(src / "nested" / "stuck.png", picture(4, corner=HANG), ".png")
    Image.new("RGB", (16, 16), "red").save(src / "anim.gif")
    (src / "notes.txt").write_text("not an image")
    return src


def test_redacts_a_tree_mirroring_paths(tree: Path, tmp_path: Path) -> None:
    out, regions = tmp_path / "out", tmp_path / "reports" / "regions.jsonl"
    stale = out / "nested" / "stuck.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left over from an earlier run")
    calls: list[tuple[int, int]] = []
    summary = redact_directory(
        tree, out, policy=POLICY, workers=2, regions_out=regions,
        progress=lambda done, total: calls.append((done, total)),
        detector_names=NAMES, initializer=register_box,
    )  # fmt: skip
    assert (summary.total, summary.released, summary.quarantined, summary.rejected) == (6, 3, 1, 2)
    assert summary.reasons == {"redaction-timeout": 1, "unsupported-format": 2}
    assert calls[-1] == (6, 6) and [d for d, _ in calls] == list(range(1, 7))
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.jpg", "nested/deeper/b.png", "nested/frame.png"]

    lines = [json.loads(line) for line in regions.read_text().splitlines()]
    by_file = {line["file"]: line for line in lines}
    assert [line["file"] for line in lines] == sorted(by_file)
    assert by_file["anim.gif"]["status"] == "rejected"
    assert by_file["anim.gif"]["reasons"][0]["code"] == "unsupported-format"
    assert by_file["notes.txt"]["status"] == "rejected"
    assert by_file["nested/stuck.png"]["status"] == "quarantined"
    assert by_file["nested/stuck.png"]["output"] is None
    assert by_file["nested/frame.jpg"]["output"] == "nested/frame.png"
    # grown by the face margin: 25% + 2 px a side, 40% of that above the box
    assert by_file["a.jpg"]["regions"] == [
        {"label": "face", "x": 8, "y": 11, "w": 64, "h": 57, "score": 0.8, "detector": "test-box"}
    ]
    # Pixels: filled inside the (grown) region, close to the original outside it.
    redacted = cv2.imread(str(out / "nested" / "deeper" / "b.png"))
    assert (redacted[20:52, 24:56] == 0).all()  # inside the face ellipse of the grown box
    assert np.array_equal(redacted[80:, 80:], picture(2)[80:, 80:])
    frame = cv2.imread(str(out / "nested" / "frame.png"), cv2.IMREAD_UNCHANGED)
    assert frame.shape == (120, 160, 3)


def test_output_inside_input_is_skipped_and_the_reverse_refused(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    write(src / "a.png", picture(1), ".png")
    out = src / "redacted"
    first = redact_directory(
        src, out, policy=POLICY, workers=1, regions_out=None, progress=None,
        detector_names=NAMES, initializer=register_box,
    )  # fmt: skip
    again = redact_directory(
        src, out, policy=POLICY, workers=1, regions_out=None, progress=None,
        detector_names=NAMES, initializer=register_box,
    )  # fmt: skip
    assert first.total == again.total == 1
    with pytest.raises(BatchError):
        redact_directory(src, src, policy=POLICY, workers=1, regions_out=None, progress=None)
    with pytest.raises(BatchError):
        redact_directory(out, src, policy=POLICY, workers=1, regions_out=None, progress=None)


def test_output_name_follows_the_content_format() -> None:
    assert output_name("x/a.JPG", ImageFormat.JPEG) == "x/a.JPG"
    assert output_name("x/a.jpeg", ImageFormat.JPEG) == "x/a.jpeg"
    assert output_name("x/a.jpg", ImageFormat.PNG) == "x/a.png"
    assert output_name("a.tif", ImageFormat.TIFF) == "a.tif"
    assert output_name("noext", ImageFormat.WEBP) == "noext.webp"


# --------------------------------------------------------------------------- policy files


def test_policy_file_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text("faces:\n  threshold: 0.3\nplates:\n  enabled: false\noperator: fill\n")
    policy = load_policy_file(yaml_file)
    assert policy.faces.threshold == 0.3 and not policy.plates.enabled
    assert policy.operator is Operator.FILL
    json_file = tmp_path / "p.json"
    json_file.write_text(json.dumps({"redaction": {"leak_check": {"max_rounds": 3}}}))
    assert load_policy_file(json_file).leak_check.max_rounds == 3


@pytest.mark.parametrize(
    "text",
    [
        "faces:\n  treshold: 0.3\n",
        "faces: [1, 2\n",
        "- just\n- a list\n",
        "faces:\n  threshold: 2\n",
    ],
    ids=["typo", "bad-yaml", "not-a-mapping", "out-of-range"],
)
def test_policy_file_errors_say_what_to_fix(tmp_path: Path, text: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyFileError) as err:
        load_policy_file(path)
    assert str(path) in err.value.message


def test_shipped_default_policy_file_is_the_library_default() -> None:
    """gateway/policies/redaction-default.yaml writes out RedactionPolicy(); it must not drift."""
    from redaction.policy import RedactionPolicy

    shipped = Path(__file__).resolve().parents[2] / "gateway/policies/redaction-default.yaml"
    assert load_policy_file(shipped) == RedactionPolicy()
