"""CenterFace on onnxruntime and OpenVINO, same files, in CPU time, variants interleaved.

    .venv/bin/python -m bench.centerface_runtimes [--dashcam 40] [--photos 60] [--tag T]

For every image (the first `--dashcam` plates-dashcam frames, 1280x720, and the first
`--photos` faces-masks photos) each variant runs the primary face detector's model call, the
`CenterFaceModel.boxes()` equivalent: the image as the detector feeds it (`pad_for_borders`
with the default border settings, so sides are already multiples of 32), the network at 1x,
the decoding at threshold 0.08. Variants:

- `ort-int8`: today (`CenterFaceModel(quantized=True)`, onnxruntime, the int8 QDQ file);
- `ort-fp32`: onnxruntime on the fp32 original;
- `ov-int8`, `ov-fp32`, `ov-bf16`: OpenVINO on the int8 file, and on the fp32 file with
  the precision hint f32 or bf16 (read back from the compiled model), dynamic H and W, the
  same float NCHW blob as today;
- `...-u8`: the same with uint8 NHWC BGR pixels in, the BGR->RGB swap and the conversion to
  float folded into the graph (`PrePostProcessor`, as `runtime._u8_image_input`);
- `...-static`: u8 input, the model reshaped to each image's padded size and compiled once
  per size (compilation untimed here, reported separately: a service meets new sizes);
  `ov-int8-static-f32in` the same with today's float blob.

One process, one thread (`OMP_NUM_THREADS=1`, `cv2.setNumThreads(1)`, one intra-op thread,
one OpenVINO inference thread), `bench/timing.py` `interleaved_cpu`. An untimed first pass
compiles the static shapes and records, per variant, how far its heatmap is from the same
file on onnxruntime and how many candidates above the threshold differ. Writes
`bench/results/centerface-runtimes-<date>[-<tag>].md/.json` (machine, commit, load).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench.redaction import REPO, machine_info
from bench.scoring import SHARED
from bench.timing import interleaved_cpu
from redaction.detectors import borders
from redaction.detectors.centerface import (
    _OUTPUTS,
    CenterFaceModel,
    _blob,
    _decode,
)
from redaction.detectors.runtime import compiled_precision, cpu_config
from redaction.types import BGRImage

THRESHOLD = 0.08
MODELS = REPO / "redaction" / "models"


class OvCenterFace:
    """CenterFace compiled by OpenVINO: `boxes(image, scale=1, threshold)` like
    `CenterFaceModel.boxes` on an image whose sides are multiples of 32."""

    def __init__(self, file: str, *, precision: str, u8: bool, static: bool) -> None:
        import openvino as ov

        self._core = ov.Core()
        self._config = cpu_config(threads=1, precision=precision)  # as the product's runner
        self._file = MODELS / file
        self._u8, self._static = u8, static
        self._compiled: dict[tuple[int, int] | None, Any] = {}
        self._requests: dict[tuple[int, int] | None, Any] = {}
        self._ports: dict[tuple[int, int] | None, list[Any]] = {}
        self.compile_s: dict[str, float] = {}
        self.precision = ""
        if not static:
            self._compile(None)

    def _compile(self, shape: tuple[int, int] | None) -> None:
        import openvino as ov

        start = time.perf_counter()
        model = self._core.read_model(str(self._file))
        dims = [1, 3, -1, -1] if shape is None else [1, 3, *shape]
        model.reshape({model.inputs[0]: ov.PartialShape(dims)})
        if self._u8:
            model = u8_bgr_input(model)
        compiled = self._core.compile_model(model, "CPU", self._config)
        self.compile_s[str(shape)] = round(time.perf_counter() - start, 3)
        self._compiled[shape] = compiled
        self._requests[shape] = compiled.create_infer_request()
        self.precision = compiled_precision(compiled)
        self._ports[shape] = [compiled.output(name) for name in _OUTPUTS[:3]]

    def raw(self, image: BGRImage) -> list[np.ndarray]:
        key = image.shape[:2] if self._static else None
        if key not in self._compiled:
            self._compile(key)
        request = self._requests[key]
        batch = image[None] if self._u8 else _blob(image)
        result = request.infer({0: batch})
        return [np.asarray(result[port]) for port in self._ports[key]]

    def boxes(self, image: BGRImage, *, scale: float, threshold: float) -> np.ndarray:
        assert scale == 1.0  # noqa: S101 - bench only: the detector's default single pass
        heat, size, offset = self.raw(image)
        found = _decode(heat[0, 0], size[0], offset[0], threshold)
        height, width = image.shape[:2]
        found[:, 0:4:2] = np.clip(found[:, 0:4:2], 0, width)
        found[:, 1:4:2] = np.clip(found[:, 1:4:2], 0, height)
        return found


def u8_bgr_input(model: Any) -> Any:
    """uint8 NHWC BGR pixels in; to RGB and float inside the graph (CenterFace takes 0..255)."""
    from openvino import Layout, Type
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    tensor = ppp.input().tensor()
    tensor.set_element_type(Type.u8).set_layout(Layout("NHWC")).set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(Type.f32).convert_color(ColorFormat.RGB)
    return ppp.build()


def ort_raw(model: CenterFaceModel, image: BGRImage) -> list[np.ndarray]:
    session = model._session
    outputs = session.run(None, {session.get_inputs()[0].name: _blob(image)})
    return [np.asarray(o) for o in outputs[:3]]


VARIANTS: dict[str, tuple[str, str, bool, bool]] = {
    # name: (file, precision hint, u8 input, static shapes)
    "ov-int8": ("centerface-int8.onnx", "f32", False, False),
    "ov-int8-u8": ("centerface-int8.onnx", "f32", True, False),
    "ov-int8-static": ("centerface-int8.onnx", "f32", True, True),
    "ov-int8-static-f32in": ("centerface-int8.onnx", "f32", False, True),
    "ov-fp32": ("centerface.onnx", "f32", False, False),
    "ov-fp32-u8": ("centerface.onnx", "f32", True, False),
    "ov-bf16": ("centerface.onnx", "bf16", False, False),
    "ov-bf16-u8": ("centerface.onnx", "bf16", True, False),
    "ov-bf16-static": ("centerface.onnx", "bf16", True, True),
}
TODAY = "ort-int8"


def load_models(names: list[str]) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for name in names:
        if name == "ort-int8":
            models[name] = CenterFaceModel(quantized=True, threads=1)
        elif name == "ort-fp32":
            models[name] = CenterFaceModel(threads=1)
        else:
            file, precision, u8, static = VARIANTS[name]
            models[name] = OvCenterFace(file, precision=precision, u8=u8, static=static)
    return models


def padded_image(path: Path) -> BGRImage:
    """The photo as the face detector feeds it: padded at the borders (`borders.py`)."""
    image = np.asarray(cv2.imread(str(path), cv2.IMREAD_COLOR), np.uint8)
    padded, _, _ = borders.pad_for_borders(
        image,
        minimum=borders.BORDER_PAD or 0,
        mode=borders.BORDER_MODE,
        place=borders.BORDER_PLACE,
    )
    return np.ascontiguousarray(padded)


def padded_images(set_dir: Path, count: int) -> list[BGRImage]:
    entries = json.loads((set_dir / "gt.json").read_text())["images"][:count]
    return [padded_image(set_dir / entry["file"]) for entry in entries]


def fidelity(models: dict[str, Any], images: list[BGRImage]) -> dict[str, dict[str, Any]]:
    """Untimed pass (compiles static shapes): heatmap max |diff| against the same file on
    onnxruntime, and candidates above the threshold gained or lost against today."""
    reference = {
        "int8": models.get("ort-int8") or CenterFaceModel(quantized=True, threads=1),
        "fp32": models.get("ort-fp32") or CenterFaceModel(threads=1),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, model in models.items():
        same_file = reference["int8" if "int8" in name else "fp32"]
        worst, changed, cand, today = 0.0, 0, 0, 0
        for image in images:
            heat = ort_raw(model, image)[0] if name.startswith("ort") else model.raw(image)[0]
            ref = ort_raw(same_file, image)[0]
            worst = max(worst, float(np.abs(heat - ref).max()))
            mine = model.boxes(image, scale=1.0, threshold=THRESHOLD)
            base = reference["int8"].boxes(image, scale=1.0, threshold=THRESHOLD)
            cand += len(mine)
            today += len(base)
            changed += int(len(mine) != len(base) or not np.allclose(mine, base, atol=0.5))
        out[name] = {
            "heat_max_abs_diff_vs_same_file_ort": round(worst, 5),
            "candidates_per_image": round(cand / len(images), 1),
            "candidates_per_image_today": round(today / len(images), 1),
            "images_with_other_candidates_than_today": changed,
        }
    return out


def measure(models: dict[str, Any], images: list[BGRImage]) -> dict[str, float]:
    names = list(models)

    def call(name: str, index: int) -> None:
        models[name].boxes(images[index], scale=1.0, threshold=THRESHOLD)

    cpu = interleaved_cpu(len(images), names, call)
    return {name: round(1000 * seconds / len(images), 2) for name, seconds in cpu.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dashcam", type=int, default=40)
    ap.add_argument("--photos", type=int, default=60)
    ap.add_argument("--variants", default=",".join(["ort-int8", "ort-fp32", *VARIANTS]))
    ap.add_argument("--tag", default="")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    import openvino

    machine = machine_info()
    machine["openvino"] = openvino.__version__
    machine["omp_num_threads"] = os.environ["OMP_NUM_THREADS"]
    names = args.variants.split(",")
    models = load_models(names)
    sets = {
        "plates-dashcam": padded_images(SHARED / "data" / "plates-dashcam", args.dashcam),
        "faces-masks": padded_images(SHARED / "data" / "faces-masks", args.photos),
    }
    results: dict[str, Any] = {}
    for set_name, images in sets.items():
        check = fidelity(models, images)
        ms = measure(models, images)
        results[set_name] = {
            "images": len(images),
            "shapes": len({image.shape for image in images}),
            "ms": ms,
            "ratio_to_today": {n: round(v / ms[TODAY], 3) for n, v in ms.items()},
            "fidelity": check,
        }
        print(set_name, json.dumps(results[set_name]["ms"]), flush=True)
    machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    extra = {
        n: {"precision": getattr(m, "precision", "f32"), "compile_s": getattr(m, "compile_s", {})}
        for n, m in models.items()
    }
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    out = {"date": date, "machine": machine, "threshold": THRESHOLD, "variants": extra,
           "results": results}  # fmt: skip
    suffix = f"-{args.tag}" if args.tag else ""
    base = args.results / f"centerface-runtimes-{date}{suffix}"
    base.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    base.with_suffix(".md").write_text(markdown(out, names) + "\n")
    print(markdown(out, names))
    return 0


def markdown(out: dict[str, Any], names: list[str]) -> str:
    machine, results = out["machine"], out["results"]
    lines = [
        f"# CenterFace per runtime, CPU ms per image ({out['date']})",
        "",
        f"{machine['cpu']}, {machine['cores']} cores; commit `{machine['commit']}`"
        f"{' (dirty)' if machine['worktree_dirty'] else ''}; onnxruntime "
        f"{machine['onnxruntime']}, OpenVINO {machine['openvino']}; load "
        f"{machine['loadavg_at_start']} at start, {machine['loadavg_at_end']} at end. One "
        "thread, process time, variants interleaved image by image; the model call only "
        f"(padded image in, candidates above {out['threshold']} out).",
        "",
        "| variant | precision | " + " | ".join(f"{s} ms | ratio" for s in results) + " |",
        "|---|---|" + "---|---|" * len(results),
    ]
    for name in names:
        cells = [f"{r['ms'][name]} | {r['ratio_to_today'][name]}" for r in results.values()]
        precision = out["variants"][name]["precision"]
        lines.append(f"| {name} | {precision} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Fidelity (untimed pass): heatmap max |diff| against the same file on onnxruntime; "
        "images whose candidates differ from today's (count, or a coordinate by > 0.5 px).",
        "",
        "| variant | " + " | ".join(f"{s} heat diff | cand/img | images differing" for s in results)
        + " |",
        "|---|" + "---|---|---|" * len(results),
    ]  # fmt: skip
    for name in names:
        cells = []
        for r in results.values():
            f = r["fidelity"][name]
            cells.append(
                f"{f['heat_max_abs_diff_vs_same_file_ort']} | {f['candidates_per_image']} | "
                f"{f['images_with_other_candidates_than_today']}/{r['images']}"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    compiles = {n: v["compile_s"] for n, v in out["variants"].items() if len(v["compile_s"]) > 1}
    for name, times in compiles.items():
        values = list(times.values())
        lines.append("")
        lines.append(
            f"`{name}` compiled {len(values)} shapes, {np.mean(values):.2f} s each on average "
            f"(max {max(values):.2f} s), not in the times above."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
