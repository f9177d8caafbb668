"""Presidio's entities on OCR words: the whole box of every word an entity touches.

Presidio's image analyzer maps each entity found in the OCR text back to word boxes; its own
mapping drops words the entity covers only in part and the URL pieces OCR split off. The
engine here keeps both, failing closed when the text and the words disagree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from presidio_analyzer import RecognizerResult

from redaction.detectors._presidio_image import ImageAnalyzerEngine, ImageRecognizerResult
from redaction.errors import DetectorFailed

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
