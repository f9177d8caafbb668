"""Personal text in images: OCR, then Presidio's pattern recognizers, fully offline.

Presidio's image analyzer reads the text (our PP-OCRv4 models by default: on synthetic PII over
photos they found 10x more than Tesseract, see bench/text_recall.py; Tesseract stays an option)
and its analyzer finds e-mail addresses, phone numbers, card numbers, IBANs and URLs in it.
PP-OCR's boxes are put in reading order, one text line per line of the analysed text, and
every word an entity touches is masked whole (WordBoxImageAnalyzerEngine). We compose the
analyzer by hand so that nothing is fetched at run time:
- the NLP engine is Presidio's no-op engine (no spaCy model; our recognizers are patterns);
- only the pattern recognizers for the policy's entities are registered;
- e-mail validation uses tldextract's bundled public-suffix snapshot, never the network.
Person names are not covered: no NER model that ships inside a package was found.
"""

from __future__ import annotations

import itertools
import re
import shutil
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

import numpy as np
import numpy.typing as npt
import pytesseract
import tldextract
from PIL import Image
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    PhoneRecognizer,
    UrlRecognizer,
)

with warnings.catch_warnings():
    # presidio_image_redactor imports its DICOM engine, which uses a deprecated pydicom module.
    warnings.filterwarnings("ignore", message=".*pydicom", category=DeprecationWarning)
    from presidio_image_redactor import ImageAnalyzerEngine
    from presidio_image_redactor.entities import ImageRecognizerResult
    from presidio_image_redactor.ocr import OCR

from redaction.detectors.base import ModelInfo
from redaction.detectors.ocr import Reading, TextBox, TextDetectorModel, TextRecognizerModel
from redaction.errors import DetectorFailed
from redaction.types import BGRImage, Label, Region


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer, validating domains against the bundled suffix list."""

    def __init__(self, *, extractor: tldextract.TLDExtract) -> None:
        super().__init__()
        self._extractor = extractor

    def validate_result(self, pattern_text: str) -> bool:
        return bool(self._extractor(pattern_text).fqdn)


def offline_suffix_extractor() -> tldextract.TLDExtract:
    """tldextract with no URLs to fetch and no cache: the snapshot inside the package."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


_RECOGNIZERS: dict[str, Callable[[tldextract.TLDExtract], EntityRecognizer]] = {
    "EMAIL_ADDRESS": lambda ex: OfflineEmailRecognizer(extractor=ex),
    "PHONE_NUMBER": lambda _ex: PhoneRecognizer(),
    "CREDIT_CARD": lambda _ex: CreditCardRecognizer(),
    "IBAN_CODE": lambda _ex: IbanRecognizer(),
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
        """Words joined by `separator` within a line, lines by a newline (also one character,
        so offsets stay those Presidio's default text would have)."""
        if not ocr_result:
            return ""
        return "\n".join(separator.join(line) for line in _lines(ocr_result))


def words_in_reading_order(
    boxes: Sequence[TextBox], readings: Sequence[Reading]
) -> dict[str, list[Any]]:
    """Tesseract's dict layout, one entry per word, lines numbered in reading order."""
    keys = ("text", "left", "top", "width", "height", "conf", "line_num")
    out: dict[str, list[Any]] = {k: [] for k in keys}
    for line_num, line in enumerate(reading_order(boxes)):
        for i in line:
            _append_words(out, boxes[i], readings[i], line_num=line_num)
    return out


def _append_words(out: dict[str, list[Any]], box: TextBox, reading: Reading, *,
                  line_num: int) -> None:  # fmt: skip
    x, y, w, h = box.bbox()
    text = reading.text
    per_char = w / max(1, len(text))
    pos = 0
    for word in text.split(" "):
        if word:
            out["text"].append(word)
            out["left"].append(round(x + pos * per_char))
            out["top"].append(y)
            out["width"].append(max(1, round(len(word) * per_char)))
            out["height"].append(h)
            out["conf"].append(100 * reading.score)
            out["line_num"].append(line_num)
        pos += len(word) + 1


def _lines(ocr_result: dict[str, list[Any]]) -> list[list[str]]:
    """The dict's words grouped by consecutive `line_num` (one line when there is none)."""
    numbers = ocr_result.get("line_num") or [0] * len(ocr_result["text"])
    lines: list[list[str]] = []
    previous = None
    for word, number in zip(ocr_result["text"], numbers, strict=True):
        if not lines or number != previous:
            lines.append([])
        lines[-1].append(word)
        previous = number
    return lines


# A box joins a line when, across the line's direction, it overlaps the line's first (widest)
# box by this share of the smaller of the two; a line is cut where the gap between
# neighbouring words exceeds this many text heights.
_LINE_OVERLAP = 0.6
_LINE_GAP_HEIGHTS = 2.0
# Below this width/height ratio a box's long side may not follow the text: its angle is unknown.
_RELIABLE_ANGLE_RATIO = 1.5
# Words of one line share their slant, up to the error of fitting a box to a few letters.
_SAME_SLANT = np.radians(8.0)


def reading_order(boxes: Sequence[TextBox]) -> list[list[int]]:
    """Indices of `boxes` as lines, top to bottom, each left to right along its own slant.

    Lines grow from their widest box, whose angle is the most reliable, and take the boxes
    inside its band (the strip it spans across the text direction), the nearest line's when
    bands cross; comparing with the first box, not with any member, keeps a slanted line
    from chaining into its neighbours.
    """
    if not boxes:
        return []
    quads = np.stack([b.quad for b in boxes]).astype(np.float64)
    slants = _text_angles(quads)
    angles = np.nan_to_num(slants)  # boxes too short to tell: read horizontally
    widths = np.linalg.norm(quads[:, 1] - quads[:, 0], axis=1)
    across = _projected(quads, np.stack([-np.sin(angles), np.cos(angles)], axis=1))
    along = _projected(quads, np.stack([np.cos(angles), np.sin(angles)], axis=1))
    lines: list[list[int]] = []
    for i in np.argsort(-widths, kind="stable"):
        seed = _best_line(int(i), lines, across, along, slants)
        if seed is None:
            lines.append([int(i)])
        else:
            lines[seed].append(int(i))
    ordered = [part for line in lines for part in _split_at_gaps(line, along, across)]
    return sorted(ordered, key=lambda line: float(quads[line, :, 1].mean()))


def _text_angles(quads: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each box's slant (radians, from its top edge); NaN where the box is too short to tell."""
    top = quads[:, 1] - quads[:, 0]
    widths = np.linalg.norm(top, axis=1)
    heights = np.linalg.norm(quads[:, 3] - quads[:, 0], axis=1)
    angles = np.arctan2(top[:, 1], top[:, 0])
    reliable = (widths >= _RELIABLE_ANGLE_RATIO * heights) & (np.abs(angles) <= np.pi / 4)
    return np.where(reliable, angles, np.nan)


def _projected(
    quads: npt.NDArray[np.float64], axes: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """[r, j] = (low, high) extent of box j on box r's axis."""
    points = np.einsum("jkd,rd->rjk", quads, axes)
    return np.stack([points.min(axis=2), points.max(axis=2)], axis=2)


def _best_line(box: int, lines: list[list[int]], across: npt.NDArray[np.float64],
               along: npt.NDArray[np.float64], slants: npt.NDArray[np.float64],
               ) -> int | None:  # fmt: skip
    """Of the lines of like slant whose first box's band `box` overlaps enough, the one with a
    member nearest along the line (a band reaches across the image: another may cross it)."""
    best, best_gap = None, np.inf
    for n, line in enumerate(lines):
        if abs(slants[box] - slants[line[0]]) > _SAME_SLANT:  # False when either is NaN
            continue
        (b_lo, b_hi), (s_lo, s_hi) = across[line[0], box], across[line[0], line[0]]
        share = (min(b_hi, s_hi) - max(b_lo, s_lo)) / min(b_hi - b_lo, s_hi - s_lo)
        if share < _LINE_OVERLAP:
            continue
        lo, hi = along[line[0], box]
        gap = min(max(along[line[0], j, 0] - hi, lo - along[line[0], j, 1]) for j in line)
        if gap < best_gap:
            best, best_gap = n, gap
    return best


def _split_at_gaps(line: list[int], along: npt.NDArray[np.float64],
                   across: npt.NDArray[np.float64]) -> list[list[int]]:  # fmt: skip
    """The line's boxes in order along its first box's direction, cut at wide gaps."""
    seed = line[0]
    ordered = sorted(line, key=lambda j: float(along[seed, j].mean()))
    height = float(across[seed, seed, 1] - across[seed, seed, 0])
    parts = [[ordered[0]]]
    for previous, j in itertools.pairwise(ordered):
        if along[seed, j, 0] - along[seed, previous, 1] > _LINE_GAP_HEIGHTS * height:
            parts.append([])
        parts[-1].append(j)
    return parts


# OCR splits URLs where their glyphs are spaced widely, at ":" and "/": a scheme (or the
# slashes after it) read as a word of its own, and a path piece after a slash.
_SCHEME_FRAGMENT = re.compile(r"(?i)^(?:(?:https?|ftps?)(?::/{0,2})?|:?/{1,2})$")
_PATH_PIECE = re.compile(r"^[\w\-.~%/?#=&+]+$")


class WordBoxImageAnalyzerEngine(ImageAnalyzerEngine):
    """Presidio's image analyzer, mapping each entity to the whole box of every word it touches.

    Presidio's own mapping drops a word that the entity only partly covers (`tel:+49` in
    `tel:+49 30 1234567`); here a word counts when its characters overlap the entity's. A URL
    also takes the pieces OCR split off next to it on the same line that Presidio's URL
    pattern leaves out: scheme fragments on its left (`https:/` before `/www.example.org`)
    and, after a URL ending in a slash, the next word if it could be a path (`profile`).
    """

    @staticmethod
    def map_analyzer_results_to_bounding_boxes(
        text_analyzer_results: list[RecognizerResult],
        ocr_result: dict[str, list[Any]],
        text: str,
        allow_list: list[str],
    ) -> list[ImageRecognizerResult]:
        if not ocr_result or not text_analyzer_results:
            return []
        words = ocr_result["text"]
        spans = _word_spans(words, text)
        found = []
        for result in text_analyzer_results:
            touched = [i for i, (start, end) in enumerate(spans)
                       if start < result.end and result.start < end]  # fmt: skip
            if result.entity_type == "URL" and touched:
                before = _scheme_fragments_before(touched[0], ocr_result, spans, text)
                after = _path_after(touched[-1], result, ocr_result, spans, text)
                touched = before + touched + after
            found += [_word_box(result, ocr_result, i) for i in touched
                      if words[i] not in allow_list]  # fmt: skip
        return found


def _word_box(result: RecognizerResult, ocr: dict[str, list[Any]], i: int) -> ImageRecognizerResult:
    box = (ocr["left"][i], ocr["top"][i], ocr["width"][i], ocr["height"][i])
    return ImageRecognizerResult(result.entity_type, result.start, result.end, result.score, *box)


def _word_spans(words: Sequence[str], text: str) -> list[tuple[int, int]]:
    """Character span of each OCR word in the text built from them (fail closed if absent)."""
    spans = []
    pos = 0
    for word in words:
        start = text.find(word, pos)
        if start < 0:
            raise DetectorFailed("OCR word not found in the analysed text", word=word)
        pos = start + len(word)
        spans.append((start, pos))
    return spans


def _scheme_fragments_before(first: int, ocr: dict[str, list[Any]],
                             spans: list[tuple[int, int]], text: str) -> list[int]:  # fmt: skip
    """Words directly left of word `first` on its line that are pieces of a URL scheme."""
    taken: list[int] = []
    i = first - 1
    while i >= 0 and _SCHEME_FRAGMENT.match(ocr["text"][i]) and _next_to(i, ocr, spans, text):
        taken.insert(0, i)
        i -= 1
    return taken


def _path_after(last: int, result: RecognizerResult, ocr: dict[str, list[Any]],
                spans: list[tuple[int, int]], text: str) -> list[int]:  # fmt: skip
    """The word right of a URL that ends in a slash where word `last` ends: its path."""
    ends_at_slash = text[result.end - 1] == "/" and spans[last][1] == result.end
    if not ends_at_slash or last + 1 >= len(spans):
        return []
    if not _PATH_PIECE.match(ocr["text"][last + 1]) or not _next_to(last, ocr, spans, text):
        return []
    return [last + 1]


def _next_to(i: int, ocr: dict[str, list[Any]], spans: list[tuple[int, int]], text: str) -> bool:
    """Word i + 1 follows word i on the same line, at most two text heights to its right."""
    gap = ocr["left"][i + 1] - (ocr["left"][i] + ocr["width"][i])
    near = gap <= 2 * max(ocr["height"][i], ocr["height"][i + 1])
    return near and "\n" not in text[spans[i][1] : spans[i + 1][0]]


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
