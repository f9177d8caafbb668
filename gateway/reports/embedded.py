"""The signed JSON inside the HTML and PDF renderings, and getting it back out to verify.

HTML carries it in `<script type="application/json" id="signed-report">` (every `<`, `>` and
`&` written as a JSON \\u escape, so the block cannot end early or be read as markup); PDF as
the attached file `signed-report.json`. `verify --report FILE` reads a JSON report, or the one
an HTML or PDF embeds. For HTML it also re-renders the page's text from the verified JSON and
refuses a page whose visible text was changed; a PDF's pages are not compared (they are a
rendering of the attachment, which is what the signature covers).
"""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from typing import Any

from gateway.core.errors import IntegrityFailure

SCRIPT_ID = "signed-report"
ATTACHMENT_NAME = "signed-report.json"
SKIPPED_TAGS = frozenset({"script", "style"})


def script_json(signed_json: bytes) -> str:
    """The signed JSON as the body of an HTML script block (same JSON value, no markup)."""
    text = signed_json.decode("utf-8").rstrip("\n")
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


class _ReportPage(HTMLParser):
    """Collects the embedded report blocks and the page's visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.text: list[str] = []
        self._open: str | None = None  # the tag whose text is not visible, if inside one
        self._block: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED_TAGS:
            self._open = tag
            found = dict(attrs)
            if found.get("type") == "application/json" and found.get("id") == SCRIPT_ID:
                self._block = []

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            if self._block is not None:
                self.blocks.append("".join(self._block))
            self._open, self._block = None, None

    def handle_data(self, data: str) -> None:
        if self._block is not None:
            self._block.append(data)
        elif self._open is None:
            self.text.append(data)


def _page(html: str) -> _ReportPage:
    page = _ReportPage()
    page.feed(html)
    page.close()
    return page


def visible_text(html: str) -> str:
    return " ".join(" ".join(_page(html).text).split())


def from_html(html: str) -> dict[str, Any]:
    blocks = _page(html).blocks
    if len(blocks) != 1:
        raise IntegrityFailure(
            f"the HTML holds {len(blocks)} embedded signed reports; expected exactly one "
            f'(<script type="application/json" id="{SCRIPT_ID}">)'
        )
    return _document(blocks[0], "the HTML's embedded report")


def from_pdf(data: bytes) -> dict[str, Any]:
    # deferred: pypdf only when a PDF report is read
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        attached = PdfReader(io.BytesIO(data)).attachments.get(ATTACHMENT_NAME, [])
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise IntegrityFailure(f"not a readable PDF: {exc}") from None
    if len(attached) != 1:
        raise IntegrityFailure(
            f"the PDF holds {len(attached)} attached signed reports named {ATTACHMENT_NAME}; "
            "expected exactly one"
        )
    return _document(attached[0], "the PDF's attached report")


def _document(raw: str | bytes, what: str) -> dict[str, Any]:
    document = signed_json(raw, what)
    if not isinstance(document, dict):
        raise IntegrityFailure(f"{what} is not a signed report")
    return document


def signed_json(raw: str | bytes, what: str, **details: Any) -> Any:
    """Parse a signed report. A signed report holds no floats (integers and strings only), so
    a number with a fraction or exponent, NaN or Infinity is tampering: refused here."""

    def no_float(text: str) -> Any:
        raise IntegrityFailure(
            f"{what} holds the number {text[:40]}: a signed report has no floats (tampered?)",
            **details,
        )

    try:
        return json.loads(raw, parse_float=no_float, parse_constant=no_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: 5000 digits
        if isinstance(exc, IntegrityFailure):
            raise
        raise IntegrityFailure(f"{what} is not a JSON report", **details) from exc


def kind_of(data: bytes) -> str:
    """json | html | pdf, from the content (not the file name)."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    head = data[:1024].lstrip().lower()
    if head.startswith(b"{"):
        return "json"
    if head.startswith((b"<!doctype html", b"<html", b"{#", b"<")):
        return "html"
    raise IntegrityFailure("not a report: expected JSON, HTML or PDF")
