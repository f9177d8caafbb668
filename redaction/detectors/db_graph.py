"""Exact rewrites of the PP-OCRv4 text detector's graph for OpenVINO: same maps, less traffic.

On a 2x dashcam frame (2560x1440) much of the detector's time went to element-wise passes over
big feature maps, not to arithmetic (OpenVINO `PERF_COUNT`,
bench/results/plates-graph-2026-12-02.md).
Two rewrites remove passes without changing what is computed (up to float rounding, < 1e-5 on
the probability map):

- The DB head: ConvTranspose (2x2, stride 2) + bias + BatchNorm + ReLU, then ConvTranspose
  (2x2, stride 2) + bias + Sigmoid. A 2x2 stride-2 transposed convolution writes every input
  pixel to its own 2x2 output block, so it is a 1x1 convolution to 4x the channels followed by
  a pixel shuffle. Both become 1x1 convolutions at 1/4 resolution (the BatchNorm folded into the
  first) and one `DepthToSpace(4)`; the 24-channel half-resolution map is never written. The
  Sigmoid is dropped: the graph returns logits, and the caller thresholds at logit(p) and takes
  the sigmoid only inside candidate boxes (`ocr.TextDetectorModel`).
- Squeeze-excitation with a shortcut (the RSE-FPN neck): `x + x * a` (two passes over `x`)
  becomes `x * (1 + a)` (one, fused by OpenVINO with the following add).

`rewrite_db_graph` returns False and leaves the model alone when the graph is not the expected
shape (another detector file): the caller then keeps probabilities.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]


def rewrite_db_graph(model: Any) -> bool:
    """Rewrite an `openvino.Model` of a DB text detector in place; True when the output is now
    the logit map (same shape as before), False when the graph was left untouched."""
    import openvino.opset13 as ops  # deferred: only the OpenVINO runner calls this

    head = _db_head(model)
    if head is None:
        log.warning("text detector graph is not PP-OCR's DB head: runs unchanged")
        return False
    _fuse_se_shortcuts(model, ops)
    _head_as_pixel_shuffle(ops, head)
    model.validate_nodes_and_infer_types()
    return True


def _const(output: Any) -> FloatArray | None:
    node = output.get_node()
    if node.get_type_name() != "Constant":
        return None
    return np.asarray(node.get_data(), dtype=np.float32)


def _db_head(model: Any) -> dict[str, Any] | None:
    """The nodes and weights of Sigmoid(ConvT(ReLU(BN(ConvT(h) + b0))) + b2), or None."""
    results = model.get_results()
    if len(results) != 1:
        return None
    sigmoid = results[0].input_value(0).get_node()
    if sigmoid.get_type_name() != "Sigmoid":
        return None
    add2 = sigmoid.input_value(0).get_node()
    convt2 = add2.input_value(0).get_node() if add2.get_type_name() == "Add" else None
    if convt2 is None or convt2.get_type_name() != "ConvolutionBackpropData":
        return None
    relu = convt2.input_value(0).get_node()
    bn = relu.input_value(0).get_node() if relu.get_type_name() == "Relu" else None
    if bn is None or bn.get_type_name() != "BatchNormInference":
        return None
    add0 = bn.input_value(0).get_node()
    convt0 = add0.input_value(0).get_node() if add0.get_type_name() == "Add" else None
    if convt0 is None or convt0.get_type_name() != "ConvolutionBackpropData":
        return None
    weights = {
        "w0": _const(convt0.input_value(1)),
        "b0": _const(add0.input_value(1)),
        "gamma": _const(bn.input_value(1)),
        "beta": _const(bn.input_value(2)),
        "mean": _const(bn.input_value(3)),
        "var": _const(bn.input_value(4)),
        "w2": _const(convt2.input_value(1)),
        "b2": _const(add2.input_value(1)),
    }
    w0, w2 = weights["w0"], weights["w2"]
    if w0 is None or w2 is None or any(v is None for v in weights.values()):
        return None
    for convt in (convt0, convt2):
        attrs = convt.get_attributes()
        if list(attrs["strides"]) != [2, 2] or list(attrs["pads_begin"]) != [0, 0]:
            return None
        if list(attrs["pads_end"]) != [0, 0] or list(attrs.get("output_padding", [0, 0])) != [
            0,
            0,
        ]:
            return None
    if w0.shape[2:] != (2, 2) or w2.shape[1:] != (1, 2, 2) or w2.shape[0] != w0.shape[1]:
        return None
    return {
        "input": convt0.input_value(0),
        "result": results[0],
        "eps": float(bn.get_attributes()["epsilon"]),
        **weights,
    }


def head_as_pointwise(
    w0: FloatArray,
    b0: FloatArray,
    gamma: FloatArray,
    beta: FloatArray,
    mean: FloatArray,
    var: FloatArray,
    eps: float,
    w2: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The two 1x1 convolutions equal to the head's two transposed convolutions.

    First: C_in -> 4*C channels, channel (dy*2 + dx)*C + c is output c of the first transposed
    convolution at offset (dy, dx) of its 2x2 block, BatchNorm folded in (weights, bias).
    Second: 4*C -> 16, channel (2*dy + ey)*4 + (2*dx + ex) is the logit at offset
    (2*dy + ey, 2*dx + ex) of the 4x4 block, the order `DepthToSpace(4, blocks_first)` reads."""
    cin, c = w0.shape[:2]
    scale = gamma / np.sqrt(var + eps)
    shift = (b0.reshape(-1) - mean) * scale + beta
    k1 = np.zeros((4 * c, cin, 1, 1), np.float32)
    bias1 = np.tile(shift, 4).astype(np.float32)
    k2 = np.zeros((16, 4 * c, 1, 1), np.float32)
    for dy in range(2):
        for dx in range(2):
            phase = slice((dy * 2 + dx) * c, (dy * 2 + dx + 1) * c)
            k1[phase, :, 0, 0] = (w0[:, :, dy, dx] * scale[None, :]).T
            for ey in range(2):
                for ex in range(2):
                    k2[(2 * dy + ey) * 4 + (2 * dx + ex), phase, 0, 0] = w2[:, 0, ey, ex]
    return k1, bias1, k2


def _head_as_pixel_shuffle(ops: Any, head: dict[str, Any]) -> None:
    k1, bias1, k2 = head_as_pointwise(
        head["w0"],
        head["b0"],
        head["gamma"],
        head["beta"],
        head["mean"],
        head["var"],
        head["eps"],
        head["w2"],
    )
    b2 = float(head["b2"].reshape(-1)[0])
    one, zero = [1, 1], [0, 0]
    y = ops.convolution(head["input"], ops.constant(k1), one, zero, zero, one)
    y = ops.relu(ops.add(y, ops.constant(bias1.reshape(1, -1, 1, 1))))
    y = ops.convolution(y, ops.constant(k2), one, zero, zero, one)
    y = ops.add(y, ops.constant(np.full((1, 16, 1, 1), b2, np.float32)))
    y = ops.depth_to_space(y, "blocks_first", 4)
    head["result"].input(0).replace_source_output(y.output(0))


def _fuse_se_shortcuts(model: Any, ops: Any) -> None:
    """`x + x * a` -> `x * (1 + a)` wherever `a` is a per-channel attention vector of `x`
    (HardSigmoid of the SE branch that pools `x`)."""
    one = ops.constant(np.ones((1,), np.float32))
    for pool in [op for op in model.get_ordered_ops() if op.get_type_name() == "ReduceMean"]:
        x = pool.input_value(0)
        users = [target.get_node() for target in x.get_target_inputs()]
        muls = [u for u in users if u.get_type_name() == "Multiply"]
        adds = [u for u in users if u.get_type_name() == "Add"]
        if len(muls) != 1 or len(adds) != 1:
            continue  # SE without a shortcut (the backbone's, at 1/32): nothing to fuse
        mul, add = muls[0], adds[0]
        others = [v for v in mul.input_values() if v.get_node() is not x.get_node()]
        if len(others) != 1 or others[0].get_node().get_type_name() != "HardSigmoid":
            continue
        if {v.get_node().get_friendly_name() for v in add.input_values()} != {
            x.get_node().get_friendly_name(),
            mul.get_friendly_name(),
        }:
            continue
        fused = ops.multiply(x, ops.add(others[0], one))
        for target in list(add.output(0).get_target_inputs()):
            target.replace_source_output(fused.output(0))
