"""The committed ONNX files answer as their original runtimes did: NanoDet-m as its TensorFlow
graph, the Open Images SSD as TFLite (outputs recorded by bench/convert_prelabel_models.py in
tests/ml_backend/data/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from ml_backend.sources import ssd_oidv4
from ml_backend.sources.nanodet import MODEL_FILE
from tests.ml_backend.nanodet_inputs import parity_input, ssd_parity_input

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "data" / "nanodet_parity.npz"
TOLERANCE = 1e-4


def test_onnx_outputs_match_the_original_graph_on_three_photos() -> None:
    recorded = np.load(FIXTURE)
    session = ort.InferenceSession(
        str(ROOT / "ml_backend" / "models" / MODEL_FILE), providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in session.get_outputs()]
    compared = 0
    for i, image in enumerate(recorded["images"]):
        outputs = session.run(None, {session.get_inputs()[0].name: parity_input(ROOT / image)})
        by_name = dict(zip(names, outputs, strict=True))
        for j, name in enumerate(recorded["outputs"]):
            got = by_name[str(name)][0]
            key = f"img{i}_out{j}"
            sampled = got.ravel()[recorded[f"{key}_idx"]]
            np.testing.assert_allclose(sampled, recorded[f"{key}_val"], atol=TOLERANCE, rtol=0)
            compared += sampled.size
            if f"{key}_rows" in recorded:  # every anchor that scored over 0.1, whole rows
                rows = recorded[f"{key}_rows"]
                np.testing.assert_allclose(
                    got[rows], recorded[f"{key}_rowval"], atol=TOLERANCE, rtol=0
                )
                compared += rows.size * got.shape[1]
    assert compared > 10_000


def test_ssd_onnx_outputs_match_the_tflite_runtime_on_three_photos() -> None:
    recorded = np.load(Path(__file__).parent / "data" / "ssd_oidv4_parity.npz")
    session = ort.InferenceSession(
        str(ROOT / "ml_backend" / "models" / ssd_oidv4.MODEL_FILE),
        providers=["CPUExecutionProvider"],
    )
    for i, image in enumerate(recorded["images"]):
        outputs = session.run(None, {session.get_inputs()[0].name: ssd_parity_input(ROOT / image)})
        for j, got in enumerate(outputs):
            flat = np.asarray(got).ravel()
            if f"img{i}_out{j}_idx" in recorded:
                flat = flat[recorded[f"img{i}_out{j}_idx"]]
            np.testing.assert_allclose(flat, recorded[f"img{i}_out{j}"], atol=TOLERANCE, rtol=0)
