"""The pipeline's redactor: the redaction library in an isolated worker process."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from gateway.core.settings import Settings
from gateway.redaction_step import RedactionOutcome
from redaction.isolation import RedactionWorkerPool, WorkerOutcome
from redaction.policy import RedactionPolicy
from redaction.registry import DetectorNames
from redaction.types import ImageFormat

OUTPUT_FORMAT = ImageFormat.JPEG
MAX_POLICIES = 4  # worker processes kept for policies other than the redactor's own


def policy_digest(policy: RedactionPolicy) -> str:
    return hashlib.sha256(policy.model_dump_json().encode()).hexdigest()


class IsolatedRedactor:
    """One worker process; killed and respawned when an image exceeds the job timeout."""

    def __init__(
        self,
        settings: Settings,
        *,
        policy: RedactionPolicy | None = None,
        detector_names: DetectorNames | None = None,
        initializer: Callable[[], None] | None = None,
    ) -> None:
        """`detector_names` and `initializer` pass through to the worker pool (a site's own
        registered detectors); every per-policy worker gets the same."""
        self.policy = policy or RedactionPolicy()
        self._settings = settings
        self._names, self._initializer = detector_names, initializer
        self._others: dict[str, IsolatedRedactor] = {}
        self._digest = policy_digest(self.policy)
        self._pool = RedactionWorkerPool(
            policy=self.policy,
            workers=1,
            timeout_seconds=settings.job_timeout_seconds,
            output_format=OUTPUT_FORMAT,
            detector_names=detector_names,
            initializer=initializer,
        )

    def redact(self, data: bytes) -> RedactionOutcome:
        return to_outcome(self._pool.redact(data), policy_digest=self._digest)

    def for_policy(self, policy: RedactionPolicy) -> IsolatedRedactor:
        """This redactor if `policy` is its own, else one worker per other policy (a few kept;
        datasets governed by the same policy share one)."""
        if policy == self.policy:
            return self
        digest = policy_digest(policy)
        child = self._others.pop(digest, None)
        if child is None:
            child = IsolatedRedactor(
                self._settings,
                policy=policy,
                detector_names=self._names,
                initializer=self._initializer,
            )
        self._others[digest] = child  # most recently used last
        while len(self._others) > MAX_POLICIES:
            self._others.pop(next(iter(self._others))).close()
        return child

    @property
    def alive(self) -> bool:
        """Every redaction worker process of this redactor is running (or starting)."""
        return self._pool.alive and all(child.alive for child in self._others.values())

    @property
    def worker_pids(self) -> list[int | None]:
        return [
            *self._pool.worker_pids,
            *(pid for child in self._others.values() for pid in child.worker_pids),
        ]

    def revive(self) -> None:
        """Replace worker processes that died while idle, before the next image needs them."""
        self._pool.revive()
        for child in self._others.values():
            child.revive()

    def close(self) -> None:
        for child in self._others.values():
            child.close()
        self._others.clear()
        self._pool.close(cancel_pending=True)


def to_outcome(worker: WorkerOutcome, *, policy_digest: str) -> RedactionOutcome:
    released = worker.status == "released" and worker.data is not None
    reasons: list[dict[str, Any]] = [dict(r) for r in worker.reasons]
    if not released and not reasons:
        reasons = [{"code": "not-released", "message": f"redaction ended {worker.status}"}]
    models = [{k: str(v) for k, v in m.items()} for m in worker.result.get("models", [])]
    return RedactionOutcome(
        released=released,
        output=worker.data if released else None,
        extension="jpg",
        regions=worker.regions,
        reasons=reasons,
        tools=models,
        policy_digest=policy_digest,
        timings_ms={str(k): float(v) for k, v in worker.result.get("timings_ms", {}).items()},
        candidate=None if released else worker.candidate,
        leak_hits=[] if released else _persisting(worker.result),
    )


def _persisting(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The leak check's hits still present at quarantine (the evidence a reviewer is shown)."""
    leak = result.get("leak_check") or {}
    return [dict(h) for h in leak.get("persisting", []) if isinstance(h, dict)]
