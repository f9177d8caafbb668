"""The explicit detector registry: a name chosen by configuration maps to a factory.

Nothing is discovered by magic: the built-in detectors are listed below, and anything else
(tests' hanging or crashing detectors, a site's own model) is added with `register_detector`.
`build_detectors` turns a policy into the `DetectorSet` the engine runs; loaded models are
cached per process, keyed by detector name, thread count and the policy's settings, so a worker
loads each model once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from redaction.detectors.base import Detector
from redaction.errors import DetectorFailed
from redaction.policy import RedactionPolicy

DetectorFactory = Callable[[RedactionPolicy, int], Detector]
"""Builds a detector from the policy and an onnxruntime intra-op thread count."""


class UnknownDetector(DetectorFailed):
    code = "unknown-detector"


@dataclass(frozen=True, slots=True)
class DetectorNames:
    """Which registered detector plays each role. The policy switches roles on and off (faces,
    plates, text `enabled`; the leak check follows faces, and plates when `leak_plates` names
    a detector). The face leak check is mandatory whenever the policy enables it.

    The plate leak check is opt-in: a second PP-OCRv4 pass costs as much as the plate stage
    itself (about 2.2 s per 1280x720 frame on one core, bench/results/redaction-2026-11-25-
    quick40.md), which would double the slowest stage."""

    faces: str = "centerface"
    plates: str = "pp-ocrv4-plates"
    text: str = "presidio-text"
    leak_faces: str = "retinaface"
    leak_plates: str | None = None


@dataclass(frozen=True, slots=True)
class DetectorSet:
    """The detectors one redaction uses. A role the policy enables must not be `None`: the
    engine quarantines rather than skip it."""

    faces: Detector | None = None
    plates: Detector | None = None
    text: Detector | None = None
    leak_faces: Detector | None = None
    leak_plates: Detector | None = None

    def all(self) -> tuple[Detector, ...]:
        seen: dict[int, Detector] = {}
        for det in (self.faces, self.plates, self.text, self.leak_faces, self.leak_plates):
            if det is not None:
                seen.setdefault(id(det), det)
        return tuple(seen.values())


# --------------------------------------------------------------------------- built-in factories
# deferred imports: local, so that importing the registry loads no model library.


def _centerface(policy: RedactionPolicy, threads: int) -> Detector:
    from redaction.detectors.faces import CenterFaceDetector

    return CenterFaceDetector(threshold=policy.faces.threshold, threads=threads, quantized=True)


def _centerface_fp32(policy: RedactionPolicy, threads: int) -> Detector:
    from redaction.detectors.faces import CenterFaceDetector

    return CenterFaceDetector(threshold=policy.faces.threshold, threads=threads)


def _retinaface(policy: RedactionPolicy, threads: int) -> Detector:
    from redaction.detectors.retinaface import (
        LEAK_CHECK_FILL,
        LEAK_CHECK_SCALES,
        RetinaFaceDetector,
    )

    # fp32 on purpose: an int8 build of RetinaFace (made like CenterFace's) saved 2 ms per
    # photo but saw a 300 px "face" in a night dashcam frame that the original does not.
    return RetinaFaceDetector(
        threshold=policy.leak_check.face_threshold,
        scales=LEAK_CHECK_SCALES,
        threads=threads,
        resize=policy.leak_check.scale,
        fill=LEAK_CHECK_FILL,
    )


def _plates(policy: RedactionPolicy, threads: int) -> Detector:
    from redaction.detectors.plates import PlateDetector

    plates = policy.plates
    return PlateDetector(
        threshold=plates.threshold,
        far_scale=plates.far_scale,
        far_precision=plates.far_precision,
        near_precision=plates.near_precision,
        far_threshold=plates.far_threshold,
        near_with_far=plates.near_with_far,
        far_rows=plates.far_rows,
        read_precision=plates.read_precision,
        read_min_width=plates.read_min_width,
        threads=threads,
    )


def _text(policy: RedactionPolicy, threads: int) -> Detector:
    from redaction.detectors.text_pii import TextPIIDetector

    return TextPIIDetector(
        entities=policy.text.entities,
        score_threshold=policy.text.score_threshold,
        threads=threads,
    )


_BUILTIN: dict[str, DetectorFactory] = {
    "centerface": _centerface,
    "centerface-fp32": _centerface_fp32,
    "retinaface": _retinaface,
    "pp-ocrv4-plates": _plates,
    "presidio-text": _text,
}

_lock = threading.Lock()
_factories: dict[str, DetectorFactory] = dict(_BUILTIN)
_cache: dict[tuple[str, int, str], Detector] = {}


def register_detector(name: str, factory: DetectorFactory, *, replace: bool = False) -> None:
    """Make `factory` available under `name`. Refuses to shadow a name unless `replace`."""
    with _lock:
        if name in _factories and not replace:
            raise ValueError(f"a detector named {name!r} is already registered")
        _factories[name] = factory
        for key in [k for k in _cache if k[0] == name]:
            del _cache[key]


def unregister_detector(name: str) -> None:
    with _lock:
        _factories.pop(name, None)
        for key in [k for k in _cache if k[0] == name]:
            del _cache[key]
        if name in _BUILTIN:
            _factories[name] = _BUILTIN[name]


def registered_detectors() -> tuple[str, ...]:
    with _lock:
        return tuple(sorted(_factories))


def clear_cache() -> None:
    """Forget loaded models (they are freed once no DetectorSet refers to them)."""
    with _lock:
        _cache.clear()


def get_detector(name: str, *, policy: RedactionPolicy, threads: int = 1) -> Detector:
    """The detector registered as `name`, built for `policy`, loaded once per process."""
    if threads < 1:
        raise ValueError("threads must be >= 1")
    key = (name, threads, policy.model_dump_json())
    with _lock:
        cached = _cache.get(key)
        factory = _factories.get(name)
    if cached is not None:
        return cached
    if factory is None:
        raise UnknownDetector(
            f"no detector is registered as {name!r}; known: {', '.join(registered_detectors())}",
            detector=name,
        )
    try:
        detector = factory(policy, threads)
    except DetectorFailed:
        raise
    except Exception as exc:  # a model that cannot load means we cannot look: fail closed
        raise DetectorFailed(
            f"detector {name!r} could not be loaded: {exc}", detector=name
        ) from exc
    with _lock:
        return _cache.setdefault(key, detector)


def build_detectors(
    policy: RedactionPolicy, *, names: DetectorNames | None = None, threads: int = 1
) -> DetectorSet:
    """Load the detectors `policy` enables (and the leak-check ones when the check is on)."""
    names = names or DetectorNames()

    def role(enabled: bool, name: str | None) -> Detector | None:
        if not enabled or name is None:
            return None
        return get_detector(name, policy=policy, threads=threads)

    leak = policy.leak_check.enabled
    return DetectorSet(
        faces=role(policy.faces.enabled, names.faces),
        plates=role(policy.plates.enabled, names.plates),
        text=role(policy.text.enabled, names.text),
        leak_faces=role(leak and policy.faces.enabled, names.leak_faces),
        leak_plates=role(leak and policy.plates.enabled, names.leak_plates),
    )
