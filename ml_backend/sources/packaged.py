"""A model shipped in `ml_backend/models`, checked against its pinned digest, in one
onnxruntime session on the CPU (NanoDet, the OIDv4 SSD)."""

from __future__ import annotations

import hashlib
from importlib import resources

import onnxruntime as ort

from ml_backend.sources.base import ModelMismatch


def packaged_session(
    model_file: str, sha256: str, *, threads: int
) -> tuple[ort.InferenceSession, str]:
    """The session of `model_file` and the file's SHA-256 (hex); ModelMismatch if the file is
    not the one pinned."""
    data = resources.files("ml_backend.models").joinpath(model_file).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ModelMismatch(f"ml_backend/models/{model_file} does not match its digest")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]), digest
