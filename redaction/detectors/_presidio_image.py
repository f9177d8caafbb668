"""presidio_image_redactor's classes, imported in one place with its pydicom warning silenced.

The package imports its DICOM engine at import time, which uses a deprecated pydicom module;
the warning says nothing about our use (photos, never DICOM) and would fail warnings-as-errors.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*pydicom", category=DeprecationWarning)
    from presidio_image_redactor import ImageAnalyzerEngine
    from presidio_image_redactor.entities import ImageRecognizerResult
    from presidio_image_redactor.ocr import OCR

__all__ = ["OCR", "ImageAnalyzerEngine", "ImageRecognizerResult"]
