"""Personal text in images: OCR, then Presidio's pattern recognizers, fully offline.

Presidio's image analyzer reads the text (our PP-OCRv4 models by default: on synthetic PII over
photos they found 10x more than Tesseract, see bench/text_recall.py; Tesseract stays an option)
and its analyzer finds e-mail addresses, phone numbers, card numbers, IBANs and URLs in it.
IBANs and card numbers are found by shape; their checksums raise the score, never veto (an OCR
misread of one digit must not leave a number readable).
PP-OCR's boxes are put in reading order, one text line per line of the analysed text
(text_layout.py), and every word an entity touches is masked whole (WordBoxImageAnalyzerEngine,
text_entity_boxes.py). We compose the analyzer by hand so that nothing is fetched at run time:
- the NLP engine is Presidio's no-op engine (no spaCy model; our recognizers are patterns);
- only the pattern recognizers for the policy's entities are registered;
- e-mail validation uses tldextract's bundled public-suffix snapshot, never the network.
Person names are not covered: no NER model that ships inside a package was found.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

import numpy as np
import pytesseract
import tldextract
from PIL import Image
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    RecognizerRegistry,
)
from presidio_analyzer.nlp_engine import NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    PhoneRecognizer,
    UrlRecognizer,
)

from redaction.detectors._presidio_image import OCR
from redaction.detectors.base import ModelInfo
from redaction.detectors.ocr import TextDetectorModel, TextRecognizerModel
from redaction.detectors.text_entity_boxes import WordBoxImageAnalyzerEngine
from redaction.detectors.text_layout import text_in_lines, words_in_reading_order
from redaction.errors import DetectorFailed
from redaction.types import BGRImage, Label, Region


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer, validating domains against the bundled suffix list."""

    def __init__(self, *, extractor: tldextract.TLDExtract) -> None:
        super().__init__()
        self._extractor = extractor

    def validate_result(self, pattern_text: str) -> bool:
        return bool(self._extractor(pattern_text).fqdn)


class ShapeIbanRecognizer(IbanRecognizer):
    """An IBAN by its shape: a valid checksum raises the score to 1.0, a failed one keeps the
    pattern's score (0.5). OCR misreading one character breaks the checksum, and redaction
    must not fail open on it (issue 20): validation may raise a score, never veto."""

    def validate_result(self, pattern_text: str) -> bool | None:
        return True if super().validate_result(pattern_text) else None


class ShapeCreditCardRecognizer(CreditCardRecognizer):
    """A card number by its shape: Luhn raises the score to 1.0, a failed Luhn keeps the
    pattern's score (0.3), for the same reason as `ShapeIbanRecognizer`."""

    # PatternRecognizer.validate_result may answer None (no verdict); this subclass narrowed it.
    def validate_result(self, pattern_text: str) -> bool | None:  # type: ignore[override]
        return True if super().validate_result(pattern_text) else None


def offline_suffix_extractor() -> tldextract.TLDExtract:
    """tldextract with no URLs to fetch and no cache: the snapshot inside the package."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


_RECOGNIZERS: dict[str, Callable[[tldextract.TLDExtract], EntityRecognizer]] = {
    "EMAIL_ADDRESS": lambda ex: OfflineEmailRecognizer(extractor=ex),
    "PHONE_NUMBER": lambda _ex: PhoneRecognizer(),
    "CREDIT_CARD": lambda _ex: ShapeCreditCardRecognizer(),
    "IBAN_CODE": lambda _ex: ShapeIbanRecognizer(),
    "URL": lambda _ex: UrlRecognizer(),
}


def offline_analyzer(entities: Sequence[str]) -> AnalyzerEngine:
    """An AnalyzerEngine that loads no model and registers only our pattern recognizers."""
    unknown = sorted(set(entities) - set(_RECOGNIZERS))
    if unknown:
        raise DetectorFailed(f"no offline recognizer for {unknown}", known=sorted(_RECOGNIZERS))
    extractor = offline_suffix_extractor()
    registry = RecognizerRegistry(supported_languages=["en"])
    for entity in entities:
        registry.add_recognizer(_RECOGNIZERS[entity](extractor))
    nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    nlp.load()
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])


class PPOcrAdapter(OCR):
    """Presidio OCR over the PP-OCRv4 models: one box per word, in Tesseract's dict layout.

    The models find text lines (large type: one box per word, in no useful order); boxes are
    put in reading order and numbered by line (`line_num`, as Tesseract does), and the text
    for Presidio has one line per text line, so that no pattern runs from one line into the
    next. Words get a share of their box's width in proportion to their characters (the
    caller's margin absorbs the small error).
    """

    def __init__(
        self, detector: TextDetectorModel, recognizer: TextRecognizerModel, *, max_side: int
    ) -> None:
        self._detector = detector
        self._recognizer = recognizer
        self._max_side = max_side

    def perform_ocr(self, image: object, **_kwargs: Any) -> dict[str, list[Any]]:
        if not isinstance(image, Image.Image):
            raise DetectorFailed("PP-OCR adapter expects a PIL image from Presidio")
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        scale = min(2.0, self._max_side / max(bgr.shape[:2]))
        boxes = self._detector.detect(bgr, scale=scale)
        readings = self._recognizer.read(bgr, boxes) if boxes else []
        return words_in_reading_order(boxes, readings)

    @staticmethod
    def get_text_from_ocr_dict(ocr_result: dict[str, list[Any]], separator: str = " ") -> str:
        """Words joined by `separator` within a line, lines by a newline."""
        return text_in_lines(ocr_result, separator)


class TextPIIDetector:
    """Detector protocol implementation for personal text (label `text`)."""

    name = "presidio-text"

    def __init__(
        self,
        *,
        entities: Sequence[str],
        score_threshold: float,
        ocr: str = "ppocr",
        threads: int = 1,
        max_side: int = 1600,
    ) -> None:
        self._entities = list(entities)
        self._score_threshold = score_threshold
        engine_ocr: OCR
        if ocr == "tesseract":
            self.model = _tesseract_info()
            engine_ocr = _TesseractOCR()
        elif ocr == "ppocr":
            detector = TextDetectorModel(threads=threads)
            recognizer = TextRecognizerModel(threads=threads)
            engine_ocr = PPOcrAdapter(detector, recognizer, max_side=max_side)
            self.model = detector.info
        else:
            raise DetectorFailed(f"unknown OCR engine {ocr!r}", known=["tesseract", "ppocr"])
        analyzer = offline_analyzer(entities)
        self._engine = WordBoxImageAnalyzerEngine(analyzer_engine=analyzer, ocr=engine_ocr)

    def detect(self, image: BGRImage) -> list[Region]:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise DetectorFailed("text detector needs an HxWx3 uint8 BGR image")
        pil = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
        try:
            found = self._engine.analyze(
                pil, entities=self._entities, score_threshold=self._score_threshold
            )
        except DetectorFailed:
            raise
        except Exception as exc:  # OCR binaries and Presidio raise many types: fail closed
            raise DetectorFailed("personal-text analysis failed", error=repr(exc)) from exc
        return [
            Region(Label.TEXT, int(r.left), int(r.top), int(r.width), int(r.height),
                   float(r.score), f"{self.name}:{r.entity_type}")
            for r in found
        ]  # fmt: skip


class _TesseractOCR(OCR):
    """Presidio's Tesseract call in sparse-text mode (photos, not pages)."""

    def __init__(self) -> None:
        self._config = "--oem 1 --psm 11"

    def perform_ocr(self, image: object, **_kwargs: Any) -> dict[str, list[Any]]:
        result: dict[str, list[Any]] = pytesseract.image_to_data(
            image, output_type=pytesseract.Output.DICT, config=self._config
        )
        return result


def _tesseract_info() -> ModelInfo:
    binary = shutil.which("tesseract")
    if binary is None:
        raise DetectorFailed("the tesseract binary is not installed (Debian: tesseract-ocr)")
    try:
        version = str(pytesseract.get_tesseract_version())
        package_version = metadata.version("pytesseract")
    except (pytesseract.TesseractNotFoundError, metadata.PackageNotFoundError) as exc:
        raise DetectorFailed("cannot run tesseract", error=str(exc)) from exc
    return ModelInfo(
        name=f"Tesseract {version} (eng LSTM)",
        file=binary,
        package="pytesseract",
        package_version=package_version,
        sha256="",
        licence="Apache-2.0",
    )
