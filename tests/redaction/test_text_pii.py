"""Personal-text detector: finds rendered PII, ignores plain text, never touches the network."""

from __future__ import annotations

import shutil
import socket

import cv2
import numpy as np
import pytest

from redaction.detectors.text_pii import TextPIIDetector, offline_analyzer
from redaction.errors import DetectorFailed
from redaction.types import Label, Region

ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "URL")
NO_TESSERACT = pytest.mark.skipif(shutil.which("tesseract") is None, reason="no tesseract")


def _card(lines: list[str]) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    img = np.full((90 + 80 * len(lines), 960, 3), 238, np.uint8)
    boxes = []
    for i, text in enumerate(lines):
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 2)
        x, y = 30, 70 + 80 * i
        cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (25, 25, 25), 2, cv2.LINE_AA)
        boxes.append((x, y - th, tw, th + base))
    return img, boxes


def _covered_by(target: tuple[int, int, int, int], regions: list[Region], share: float) -> bool:
    x, y, w, h = target
    mask = np.zeros((y + h + 50, x + w + 50), bool)
    for r in regions:
        mask[max(0, r.y) : r.y + r.h, max(0, r.x) : r.x + r.w] = True
    return float(mask[y : y + h, x : x + w].mean()) >= share


def _grown(regions: list[Region], margin: float = 0.15) -> list[Region]:
    return [r.expanded(margin, width=10_000, height=10_000) for r in regions]


@pytest.fixture(scope="module")
def detector() -> TextPIIDetector:
    return TextPIIDetector(entities=ENTITIES, score_threshold=0.3)


@pytest.mark.integration
@NO_TESSERACT
def test_tesseract_engine_finds_an_email() -> None:
    tesseract = TextPIIDetector(entities=ENTITIES, score_threshold=0.3, ocr="tesseract")
    img, (email,) = _card(["jane.doe@example.com"])
    regions = tesseract.detect(img)
    assert {r.detector for r in regions} >= {"presidio-text:EMAIL_ADDRESS"}
    assert _covered_by(email, _grown(regions), 0.9)
    assert tesseract.detect(_card(["HELLO WORLD"])[0]) == []


@pytest.mark.integration
def test_email_and_iban_are_found(detector: TextPIIDetector) -> None:
    img, (email, iban) = _card(["jane.doe@example.com", "DE89 3704 0044 0532 0130 00"])
    before = img.copy()
    regions = detector.detect(img)
    assert np.array_equal(img, before)
    assert all(r.label is Label.TEXT for r in regions)
    kinds = {r.detector.split(":")[1] for r in regions}
    assert {"EMAIL_ADDRESS", "IBAN_CODE"} <= kinds
    # Region x-extents are word shares of a line: the policy margin absorbs the error.
    assert _covered_by(email, _grown(regions), 0.9)
    assert _covered_by(iban, _grown(regions), 0.9)


@pytest.mark.integration
def test_plain_text_is_not_personal(detector: TextPIIDetector) -> None:
    img, _ = _card(["HELLO WORLD", "OPEN 9 TO 5"])
    assert detector.detect(img) == []


@pytest.mark.integration
def test_image_without_text_gives_nothing(detector: TextPIIDetector) -> None:
    img = np.full((240, 320, 3), 120, np.uint8)
    cv2.circle(img, (160, 120), 60, (30, 30, 200), -1)
    assert detector.detect(img) == []


@pytest.mark.integration
def test_no_socket_is_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # Built under the guard too: analyzer set-up and the e-mail domain check run offline.
    detector = TextPIIDetector(entities=ENTITIES, score_threshold=0.3, ocr="ppocr")
    img, _ = _card(["write to a.b@mail.example.org", "https://example.co.uk/x"])
    assert detector.detect(img)


def test_analyzer_validates_email_domains_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    analyzer = offline_analyzer(["EMAIL_ADDRESS"])
    found = analyzer.analyze(text="mail jane@example.co.uk or x@y.notatld", language="en")
    assert [r.entity_type for r in found] == ["EMAIL_ADDRESS"]


def test_unknown_entity_or_engine_is_refused() -> None:
    with pytest.raises(DetectorFailed):
        offline_analyzer(["PERSON"])
    with pytest.raises(DetectorFailed):
        TextPIIDetector(entities=ENTITIES, score_threshold=0.3, ocr="cloud")


def test_missing_tesseract_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(DetectorFailed):
        TextPIIDetector(entities=ENTITIES, score_threshold=0.3, ocr="tesseract")
