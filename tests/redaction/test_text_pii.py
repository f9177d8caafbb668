"""Personal-text detector: finds rendered PII, ignores plain text, never touches the network."""

from __future__ import annotations

import shutil
import socket

import cv2
import numpy as np
import pytest

from redaction.detectors.text_entity_boxes import WordBoxImageAnalyzerEngine
from redaction.detectors.text_pii import PPOcrAdapter, TextPIIDetector, offline_analyzer
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


# --------------------------------------------------------------------------- large text


def _large_text(
    lines: list[str], *, scale: float, angle: float = 0.0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Large rendered lines, rotated by `angle` degrees; with each line's ink pixels."""
    size = (350 + 150 * len(lines), 1100)  # room to turn by 25 degrees
    img = np.full((*size, 3), 238, np.uint8)
    rotation = cv2.getRotationMatrix2D((size[1] / 2, size[0] / 2), angle, 1.0)
    inks = []
    for i, text in enumerate(lines):
        layer = np.zeros(size, np.uint8)
        baseline = 250 + 150 * i
        cv2.putText(layer, text, (60, baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, 255,
                    max(2, round(scale * 1.8)), cv2.LINE_AA)  # fmt: skip
        layer = cv2.warpAffine(layer, rotation, (size[1], size[0]))
        img[layer > 127] = 25
        inks.append(layer > 127)
    return img, inks


def _ink_covered(ink: np.ndarray, regions: list[Region]) -> float:
    mask = np.zeros(ink.shape, bool)
    for r in _grown(regions):
        mask[max(0, r.y) : r.y + r.h, max(0, r.x) : r.x + r.w] = True
    return float(mask[ink].mean())


def test_text_keeps_lines_apart_with_one_character_separators() -> None:
    ocr = {"text": ["card", "4111", "1111", "1111", "1111"], "line_num": [0, 0, 0, 1, 1]}
    text = PPOcrAdapter.get_text_from_ocr_dict(ocr)
    assert text == "card 4111 1111\n1111 1111"
    assert len(text) == len(" ".join(ocr["text"]))
    assert offline_analyzer(["CREDIT_CARD"]).analyze(text=text, language="en") == []


def _ocr_dict(words: list[tuple[str, int, int, int]]) -> dict[str, list[object]]:
    """Words as (text, left, line, width), 40 px high, lines 60 px apart."""
    return {
        "text": [w[0] for w in words], "left": [w[1] for w in words],
        "top": [60 * w[2] for w in words], "width": [w[3] for w in words],
        "height": [40] * len(words), "conf": [90.0] * len(words), "line_num": [w[2] for w in words],
    }  # fmt: skip


def _mapped(words: list[tuple[str, int, int, int]]) -> set[str]:
    ocr = _ocr_dict(words)
    text = PPOcrAdapter.get_text_from_ocr_dict(ocr)
    found = offline_analyzer(ENTITIES).analyze(text=text, language="en", score_threshold=0.3)
    boxes = WordBoxImageAnalyzerEngine.map_analyzer_results_to_bounding_boxes(found, ocr, text, [])
    return {ocr["text"][ocr["left"].index(b.left)] for b in boxes}


def test_every_word_an_entity_touches_is_masked_whole() -> None:
    # Presidio's own mapping skips `tel:+49`: the phone number starts inside that word.
    assert _mapped([("tel:+49", 0, 0, 140), ("30", 150, 0, 40), ("1234567", 200, 0, 140)]) == {
        "tel:+49", "30", "1234567"}  # fmt: skip


def test_url_takes_the_scheme_fragment_on_its_left_only() -> None:
    url = ("/www.example.org/profile", 160, 0, 480)
    assert _mapped([("https:/", 0, 0, 140), url]) == {"https:/", url[0]}
    assert _mapped([("see", 0, 0, 60), ("http:", 70, 0, 60), ("/", 135, 0, 20), url]) == {
        "http:", "/", url[0]}  # fmt: skip
    # Not from the line above, nor from far away on the same line.
    assert _mapped([("https:/", 0, 0, 140), ("/www.example.org/profile", 10, 1, 480)]) == {url[0]}
    assert _mapped([("https:/", 0, 0, 140), ("/www.example.org/profile", 600, 0, 480)]) == {url[0]}


def test_url_ending_in_a_slash_takes_the_path_word_after_it() -> None:
    words = [("https://", 0, 0, 140), ("www.example.org/", 150, 0, 300), ("profile", 460, 0, 120)]
    assert _mapped(words) == {"https://", "www.example.org/", "profile"}
    # No slash, or the next word is on the next line: the URL ends where Presidio says.
    assert _mapped([("www.example.org", 0, 0, 300), ("profile", 310, 0, 120)]) == {
        "www.example.org"}  # fmt: skip
    assert _mapped([("www.example.org/", 0, 0, 300), ("profile", 10, 1, 120)]) == {
        "www.example.org/"}  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize("angle", [0.0, 25.0, -25.0])
def test_large_phone_number_split_into_words_is_found(
    detector: TextPIIDetector, angle: float
) -> None:
    img, (ink,) = _large_text(["(212) 555-0187"], scale=2.4, angle=angle)
    regions = detector.detect(img)
    assert {r.detector for r in regions} == {"presidio-text:PHONE_NUMBER"}
    assert _ink_covered(ink, regions) >= 0.95


@pytest.mark.integration
def test_url_with_split_scheme_is_masked_whole(detector: TextPIIDetector) -> None:
    img, (ink,) = _large_text(["https://www.example.org/profile"], scale=1.5)
    regions = detector.detect(img)
    assert {r.detector for r in regions} == {"presidio-text:URL"}
    assert _ink_covered(ink, regions) >= 0.95


@pytest.mark.integration
def test_no_pattern_runs_from_one_line_into_the_next(detector: TextPIIDetector) -> None:
    # Read as one line (either order), these would make the card number 4111 1111 1111 1111.
    img, _ = _large_text(["1111 1111 end", "card 4111 1111"], scale=1.0)
    assert detector.detect(img) == []
    img, _ = _large_text(["4111 1111", "1111 1111"], scale=1.0)
    assert detector.detect(img) == []


# ------------------------------------------------------------- shape first, checksum second
# An OCR misreading one character breaks an IBAN's or a card number's checksum: the number
# must still be masked (issue 20). These readings are what PP-OCR gives for such a misread.
MISREAD_IBAN = "DE89 3704 0044 0532 0130 01"  # DE89 3704 0044 0532 0130 00, last digit misread
MISREAD_CARD = "4111 1111 1111 1117"  # 4111 1111 1111 1111, Luhn fails


def test_checksum_raises_the_score_but_never_vetoes() -> None:
    def found(entity: str, text: str) -> list[tuple[str, float]]:
        results = offline_analyzer([entity]).analyze(text=text, language="en", score_threshold=0.3)
        return [(text[r.start : r.end], r.score) for r in results]

    (valid_iban,) = found("IBAN_CODE", "DE89 3704 0044 0532 0130 00")
    (misread_iban,) = found("IBAN_CODE", MISREAD_IBAN)
    assert misread_iban[0] == MISREAD_IBAN
    assert valid_iban[1] > misread_iban[1] >= 0.3
    (valid_card,) = found("CREDIT_CARD", "4111 1111 1111 1111")
    (misread_card,) = found("CREDIT_CARD", MISREAD_CARD)
    assert misread_card[0] == MISREAD_CARD
    assert valid_card[1] > misread_card[1] >= 0.3
    # Shape still matters: too short for a card, no country code for an IBAN.
    assert found("CREDIT_CARD", "4111 1111 111") == []
    assert found("IBAN_CODE", "89 3704 0044 0532 0130 00") == []


@pytest.mark.integration
def test_iban_and_card_with_a_misread_checksum_are_masked(detector: TextPIIDetector) -> None:
    # 30 px black on white, as in the sheet.
    img = np.full((200, 1000, 3), 255, np.uint8)
    scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, 30, 2)
    targets = []
    for i, text in enumerate([MISREAD_IBAN, MISREAD_CARD]):
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
        cv2.putText(img, text, (30, 70 + 80 * i), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2,
                    cv2.LINE_AA)  # fmt: skip
        targets.append((30, 70 + 80 * i - th, tw, th + base))
    regions = detector.detect(img)
    # (The IBAN's middle digits are card-shaped too; the same words are masked either way.)
    assert {r.detector for r in regions} == {
        "presidio-text:IBAN_CODE", "presidio-text:CREDIT_CARD"}  # fmt: skip
    assert all(_covered_by(t, _grown(regions), 0.9) for t in targets)
