"""Typed errors of the redaction library.

Every error carries a stable `code` (used in problem+json types and CLI exit messages), a
human message, and details. Input errors mean the bytes were refused; redaction failures mean
the image could not be made safe and must be quarantined.
"""

from __future__ import annotations

from typing import Any


class RedactionError(Exception):
    """Base of every error raised by `redaction`."""

    code = "redaction-error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InputError(RedactionError):
    """The input was refused before any pixel was processed."""

    code = "invalid-input"


class UnsupportedFormat(InputError):
    code = "unsupported-format"


class CorruptImage(InputError):
    code = "corrupt-image"


class ImageTooLarge(InputError):
    code = "image-too-large"


class MultiFrameImage(InputError):
    code = "multi-frame-image"


class UnsupportedPixelFormat(InputError):
    code = "unsupported-pixel-format"


class EmptyInput(InputError):
    code = "empty-input"


class RedactionFailed(RedactionError):
    """Redaction could not complete safely: the asset must be quarantined, never released."""

    code = "redaction-failed"


class DetectorFailed(RedactionFailed):
    code = "detector-failed"


class RedactionTimeout(RedactionFailed):
    code = "redaction-timeout"


class LeakDetected(RedactionFailed):
    code = "leak-detected"
