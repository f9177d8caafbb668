"""Which inference runtime runs a model file: OpenVINO or onnxruntime, same fp32 ONNX file.

On this project's CPUs OpenVINO runs the PP-OCRv4 text detector about 2x faster than
onnxruntime on one thread with outputs within 1e-4 (bench/results/plates-openvino-2026-12-02.md),
so `auto` takes OpenVINO when it is installed and onnxruntime otherwise (logged once). Asking
for `openvino` by name when it is not installed is an error, never a silent substitution.
OpenVINO runs in fp32 (`INFERENCE_PRECISION_HINT`) unless bf16 is asked for by name: its default
on AMX CPUs is bf16, which changes text probabilities by up to 1.0. `openvino-bf16` serves the
plate detector's passes and recogniser (`PlateDetector`, `plates.*_precision`, recall measured
in bench/README.md); the runner reads back the precision the CPU plugin actually chose (bf16 needs
avx512_bf16 or AMX, else f32).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from redaction.errors import DetectorFailed

FloatArray = npt.NDArray[np.float32]
Runtime = Literal["auto", "onnxruntime", "openvino", "openvino-bf16"]
RUNTIMES: tuple[Runtime, ...] = ("auto", "onnxruntime", "openvino", "openvino-bf16")
"""`openvino-bf16` runs the same file in bfloat16 (avx512_bf16 or AMX; f32 on other CPUs): the
plate detector's default (bench/README.md, plate passes; the one plate the native pass once lost
in bf16 was lost to the nested-box rule since fixed)."""

log = logging.getLogger(__name__)


class Runner(Protocol):
    """One loaded model: a float32 NCHW batch in, its first output out. Thread-safe.
    `normalises` is the (mean, scale) the runner applies itself to uint8 NHWC images given to
    `run` (OpenVINO folds it into the first convolution), or None when it needs the batch.
    `logits` is True when a graph rewrite dropped the final sigmoid (`db_graph.py`)."""

    runtime: str
    normalises: tuple[float, float] | None
    logits: bool
    precision: str
    """The precision inference actually runs in, read back from the runtime ("f32", "bf16")."""

    def run(self, batch: FloatArray | npt.NDArray[np.uint8]) -> FloatArray: ...


GraphRewrite = Callable[[Any], bool]
"""Rewrites an `openvino.Model` in place; True when its output became logits."""


class OrtRunner:
    runtime = "onnxruntime"
    normalises: tuple[float, float] | None = None
    logits = False
    precision = "f32"

    def __init__(self, path: Path, *, threads: int) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises bare RuntimeError/Fail subclasses
            raise DetectorFailed(f"cannot load ONNX model {path}", error=str(exc)) from exc
        self._input = self._session.get_inputs()[0].name

    def run(self, batch: FloatArray | npt.NDArray[np.uint8]) -> FloatArray:
        try:
            out = self._session.run(None, {self._input: batch})[0]
        except Exception as exc:  # fail closed: any runtime error means we could not look
            raise DetectorFailed("model inference failed (onnxruntime)", error=str(exc)) from exc
        return np.asarray(out, dtype=np.float32)

    def metadata(self) -> dict[str, str]:
        return dict(self._session.get_modelmeta().custom_metadata_map)


class OpenVinoRunner:
    runtime = "openvino"

    def __init__(
        self,
        path: Path,
        *,
        threads: int,
        precision: str = "f32",
        normalise: tuple[float, float] | None = None,
        rewrite: GraphRewrite | None = None,
    ) -> None:
        import openvino as ov  # only when chosen: a missing wheel is handled by the caller

        core = ov.Core()
        config = cpu_config(threads=threads, precision=precision)
        self.logits = False
        try:
            model = core.read_model(str(path))
            if rewrite is not None:
                self.logits = rewrite(model)
            if normalise is not None:
                model = _u8_image_input(model, *normalise)
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # OpenVINO raises bare RuntimeError for bad models
            raise DetectorFailed(f"cannot load ONNX model {path}", error=str(exc)) from exc
        self.normalises = normalise
        # what the plugin chose, not what was asked: without avx512_bf16 or AMX a bf16 hint
        # runs in f32 (the caller logs it; recall was measured per precision)
        self.precision = compiled_precision(self._compiled)
        self._local = threading.local()  # an infer request serves one thread at a time

    def run(self, batch: FloatArray | npt.NDArray[np.uint8]) -> FloatArray:
        request: Any = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        try:
            out = request.infer({0: np.ascontiguousarray(batch)})[0]
        except Exception as exc:  # fail closed: any runtime error means we could not look
            raise DetectorFailed("model inference failed (openvino)", error=str(exc)) from exc
        return np.array(out, dtype=np.float32)  # a copy: the request reuses its buffers


def cpu_config(*, threads: int, precision: str) -> dict[str, Any]:
    """OpenVINO CPU plugin settings for one latency-bound stream on `threads` threads."""
    return {
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": precision,
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        # pinned (OpenVINO's Linux default), every worker process on a host runs its
        # inference on the same first core: two workers shared one (bench/scale.py)
        "ENABLE_CPU_PINNING": False,
    }


def compiled_precision(compiled: Any) -> str:
    """The precision a compiled model runs in, as the plugin chose it ("f32", "bf16")."""
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    return str(hint.to_string() if hasattr(hint, "to_string") else hint)


def _u8_image_input(model: Any, mean: float, scale: float) -> Any:
    """Take uint8 NHWC pixels and compute (x - mean) / scale inside the graph: saves the
    float blob (50 ms on a 2x dashcam frame), outputs within 3e-5 of the blob's."""
    # deferred: OpenVINO loads only when a detector runs on it
    from openvino import Layout, Type
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(Type.u8).set_layout(Layout("NHWC"))
    ppp.input().model().set_layout(Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(Type.f32).mean(mean).scale(scale)
    return ppp.build()


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def bf16_runtime(runtime: Runtime) -> Runtime:
    """OpenVINO's bf16 runner for `runtime`, or `runtime` itself where there is none
    (onnxruntime asked for by name, or OpenVINO not installed): those run f32."""
    if runtime == "onnxruntime" or not openvino_available():
        return runtime
    return "openvino-bf16"


def load_runner(
    path: Path,
    *,
    threads: int,
    runtime: Runtime,
    normalise: tuple[float, float] | None = None,
    rewrite: GraphRewrite | None = None,
) -> Runner:
    """Load `path` on the chosen runtime; `auto` prefers OpenVINO and says when it cannot.
    `normalise`: (mean, scale) an OpenVINO runner applies to uint8 NHWC images itself;
    `rewrite`: an exact graph rewrite OpenVINO applies (onnxruntime runs the file as it is)."""
    if runtime not in RUNTIMES:
        raise DetectorFailed(f"unknown inference runtime {runtime!r}", runtime=str(runtime))
    if runtime == "onnxruntime":
        return OrtRunner(path, threads=threads)
    if openvino_available():
        precision = "bf16" if runtime == "openvino-bf16" else "f32"
        return OpenVinoRunner(
            path, threads=threads, precision=precision, normalise=normalise, rewrite=rewrite
        )
    if runtime != "auto":
        raise DetectorFailed(
            "the openvino runtime was asked for but the 'openvino' package is not installed; "
            "install it (scripts/setup.sh) or choose runtime 'onnxruntime'",
            runtime="openvino",
        )
    log.warning("openvino is not installed: %s runs on onnxruntime (about 2x slower)", path.name)
    return OrtRunner(path, threads=threads)
