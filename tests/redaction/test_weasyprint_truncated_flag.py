"""Found by the schemathesis run: importing weasyprint (the PDF report) switches Pillow's global
`ImageFile.LOAD_TRUNCATED_IMAGES` on, and from then on the service accepted a PNG whose pixel
data does not cover its declared size (black-filled) instead of refusing it as corrupt."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PIL import ImageFile

from redaction.errors import CorruptImage, ImageTooLarge
from redaction.io import decode_image
from redaction.policy import Limits
from tests.gateway.bad_inputs import corpus


@pytest.fixture
def weasyprint_imported() -> Iterator[None]:
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    import weasyprint.images  # noqa: F401  (what generating a PDF report does)

    yield
    ImageFile.LOAD_TRUNCATED_IMAGES = before


def test_a_short_png_is_refused_after_a_pdf_report_was_rendered(weasyprint_imported) -> None:
    from gateway.reports import render  # noqa: F401  (the module that imports weasyprint)

    _, data = corpus()["bogus-png-size"]
    with pytest.raises((CorruptImage, ImageTooLarge)):
        decode_image(data, limits=Limits())
