"""What the pipeline asks of a redactor (`Redactor.redact(data) -> RedactionOutcome`), apart
from the pipeline so that the policy choice (`gateway.policy.redaction_choice`) and the
redactors (`gateway.redactor`) can name it without importing the orchestration."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

RETRYABLE = frozenset({"worker-crashed", "worker-unavailable"})
"""Reasons that say nothing about the image: the job is tried again (one attempt spent)."""


@dataclass(frozen=True, slots=True)
class RedactionOutcome:
    """What a redactor hands back; plain data so it can cross a process boundary."""

    released: bool
    output: bytes | None
    extension: str
    regions: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    policy_digest: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    candidate: bytes | None = None
    """A leak-check quarantine's candidate rendition (metadata-free PNG): kept, sealed, for
    review only (gateway.review.candidates); never released."""
    leak_hits: list[dict[str, Any]] = field(default_factory=list)
    """The leak check's hits that persisted (region and score each), for the review task."""

    @property
    def retryable(self) -> bool:
        """The redaction worker died or could not start: no verdict on the image itself."""
        return not self.released and any(r.get("code") in RETRYABLE for r in self.reasons)


class Redactor(Protocol):
    def redact(self, data: bytes) -> RedactionOutcome: ...


RedactorFactory = Callable[[], Redactor]
"""Makes one redactor per worker thread (each drives its own isolated redaction process)."""


class OwnRedactor:
    """A loop's own redactor (a job worker's, the review pull's, one API-triggered pull's):
    made by `factory` on first use (a pull with nothing to re-render starts no redaction
    process) and closed by its owner; thread-safe, as the supervisor closes it from its thread.
    """

    def __init__(self, factory: RedactorFactory) -> None:
        self._factory = factory
        self._redactor: Redactor | None = None
        self._lock = threading.Lock()

    @property
    def made(self) -> Redactor | None:
        """The redactor if one was made (and not closed since)."""
        return self._redactor

    def current(self) -> Redactor:
        with self._lock:
            if self._redactor is None:
                self._redactor = self._factory()
            return self._redactor

    def redact(self, data: bytes) -> RedactionOutcome:
        return self.current().redact(data)

    def close(self) -> None:
        with self._lock:
            redactor, self._redactor = self._redactor, None
        close = getattr(redactor, "close", None)
        if callable(close):
            close()


class NotBuiltRedactor:
    """Stands where a pipeline step is not built: it quarantines, never releases."""

    def redact(self, data: bytes) -> RedactionOutcome:
        del data
        reason = {"code": "step-not-built", "message": "pixel redaction is not configured"}
        return RedactionOutcome(released=False, output=None, extension="", reasons=[reason])
