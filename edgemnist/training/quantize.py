"""fp32 ONNX -> int8 ONNX with onnxruntime's quantizer, and the static saturation check.  [train side]

Static (default): QDQ format, int8 weights with one scale per tensor (`per_channel` for one per output
channel), uint8 activations (the u8s8 kernels every x86 and ARM64 CPU runs fastest), calibrated on a
seeded sample of *training* images, never test images. The logits leave the last layer in float
(`float_logits`): no requantization to 8 bits at the end. Dynamic: int8 weights, activations
quantized at run time.

Why per tensor and float logits (batch 1, AMD EPYC): with per-channel weight scales the
fused QGemm takes MLAS's per-column zero-point path, ~1.4 µs per layer more; the logits' Q/DQ pair is
one more kernel and a rounding of the answer. Accuracy and agreement are the same within 0.03 pp.

Weights are 7-bit by default (`reduce_range`: [-64, 64]): on x86 without VNNI (AVX2, AVX-512BW) the
u8s8 kernels add two u8 x s8 products in int16 (`vpmaddubsw`), which saturates for full-range weights
(255 * 127 * 2 = 64,770 > 32,767) and changes the answers on those CPUs only. With 7-bit weights the
worst pair is 255 * 128 = 32,640: every kernel computes the exact sums, so the model gives the same
answers everywhere. `saturation_report` proves it from the weights alone, on any machine.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgemnist import integrity
from edgemnist.contract import INPUT_NAME, images_to_pixels
from edgemnist.settings import CALIBRATION_METHODS, QuantSettings

# settings.CALIBRATION_METHODS names onnxruntime's calibration methods in lower case
CALIBRATORS = {m.name.lower(): m for m in CalibrationMethod if m.name.lower() in CALIBRATION_METHODS}
assert set(CALIBRATORS) == set(CALIBRATION_METHODS), "a calibration method onnxruntime does not have"


class SampleReader(CalibrationDataReader):
    """The quantizer's sample of training images (`calibration_sample`), in batches, as onnxruntime's
    static quantization reads it."""

    def __init__(self, pixels: np.ndarray, batch_size: int = 250):
        self._batches = iter([{INPUT_NAME: pixels[i : i + batch_size]} for i in range(0, len(pixels), batch_size)])

    def get_next(self):
        return next(self._batches, None)


def calibration_sample(train_images: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A seeded sample of training images as float32 [n, 1, 28, 28] in [0, 1]."""
    idx = np.random.default_rng(seed).choice(len(train_images), size=size, replace=False)
    return images_to_pixels(train_images[np.sort(idx)])


def quantize(fp32: onnx.ModelProto, settings: QuantSettings, train_images: np.ndarray | None) -> onnx.ModelProto:
    """Return the int8 model. The fp32 model goes through ORT's pre-processing (symbolic shape
    inference + graph optimisation) first, as ORT recommends, so every tensor the quantizer
    calibrates has an inferred shape whatever the exporter version emits."""
    reduce_range = settings.weight_bits == 7
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        onnx.save_model(fp32, src)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
        if settings.method == "dynamic":
            quantize_dynamic(str(pre), str(out), per_channel=settings.per_channel, weight_type=QuantType.QInt8,
                             reduce_range=reduce_range)
            return _refresh_digest(onnx.load_model(out))
        if train_images is None:
            raise ValueError("static quantization needs training images for calibration")
        reader = SampleReader(calibration_sample(train_images, settings.calibration_size, settings.seed))
        quantize_static(
            str(pre),
            str(out),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=settings.per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=reduce_range,
            calibrate_method=CALIBRATORS[settings.calibration_method],
            extra_options={"CalibTensorRangeSymmetric": False},
        )
        return float_logits(onnx.load_model(out))


def float_logits(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Drop the QuantizeLinear -> DequantizeLinear pair on the graph's output: onnxruntime then fuses
    the last layer into a QGemm with float output. Returns `proto`, changed in place (its graph
    digest too, if it carries one)."""
    graph = proto.graph
    producer = {out: node for node in graph.node for out in node.output}
    dq = producer.get(graph.output[0].name)
    q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
    if q is None or q.op_type != "QuantizeLinear":
        return _refresh_digest(proto)
    last = producer[q.input[0]]
    last.output[list(last.output).index(q.input[0])] = graph.output[0].name
    graph.node.remove(dq)
    graph.node.remove(q)
    _drop_unused_initializers(graph)
    return _refresh_digest(proto)


def _refresh_digest(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The graph digest a changed graph carries (onnxruntime's quantizer copies the fp32 model's
    metadata, `edgemnist.graph_sha256` included), made anew; a model without one is left as it is."""
    for prop in proto.metadata_props:
        if prop.key == integrity.KEY:
            prop.value = integrity.graph_sha256(proto.SerializeToString())
    return proto


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def uint8_input(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A static int8 model -> the same model taking uint8 pixels (0-255): its input QuantizeLinear
    (scale 1/255, zero point 0: a uint8 picture *is* its quantized input) removed, the DequantizeLinear
    after it fed the reshaped uint8 pixels. A copy, its metadata kept, its graph digest (if it has
    one) made anew; ValueError when the model does not quantize its input that way (dynamic
    quantization, another calibration range)."""
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    graph = proto.graph
    consumers = {name: node for node in graph.node for name in node.input}
    reshape = consumers.get(INPUT_NAME)
    quant = consumers.get(reshape.output[0]) if reshape is not None and reshape.op_type == "Reshape" else None
    init = {t.name: t for t in graph.initializer}
    if quant is None or quant.op_type != "QuantizeLinear" or len(quant.input) < 3 or not {*quant.input[1:]} <= init.keys():
        raise ValueError("its input is not quantized by a QuantizeLinear after the Reshape (a static int8 model is)")
    scale, zero = (numpy_helper.to_array(init[name]) for name in quant.input[1:3])
    if scale != np.float32(1 / 255) or zero.dtype != np.uint8 or zero != 0:
        raise ValueError(f"its input quantization is scale {scale}, zero point {zero} ({zero.dtype}), not 1/255 and uint8 0")
    for node in graph.node:
        node.input[:] = [reshape.output[0] if name == quant.output[0] else name for name in node.input]
    graph.node.remove(quant)
    for value in [graph.input[0], *(v for v in graph.value_info if v.name == reshape.output[0])]:
        value.type.tensor_type.elem_type = onnx.TensorProto.UINT8
    _drop_unused_initializers(graph)
    return _refresh_digest(proto)


INT16_MAX = 32767
U8_MAX = 255


def _k_axis(node: onnx.NodeProto, input_index: int) -> int | None:
    """The reduction (K) axis of a 2-D weight feeding `node` at `input_index`; None if unknown."""
    attrs = {a.name: a.i for a in node.attribute}
    if node.op_type == "Gemm":
        trans = attrs.get("transB" if input_index == 1 else "transA", 0)
        return (1 - trans) if input_index == 1 else trans
    if node.op_type in ("MatMul", "MatMulInteger"):
        return 0 if input_index == 1 else 1
    return None


def worst_pair_sum(weights: np.ndarray, k_axis: int | None) -> int:
    """The largest |a1*w1 + a2*w2| over u8 activations a and any two weights of one output channel
    (two weights of the whole tensor when the layout is unknown): what an int16 pair sum must hold."""
    w = weights.astype(np.int64)
    w = w.reshape(1, -1) if k_axis is None else np.moveaxis(w, k_axis, -1).reshape(-1, w.shape[k_axis])
    if w.shape[1] < 2:
        w = np.concatenate([w, np.zeros_like(w)], axis=1)
    pos, neg = np.sort(np.maximum(w, 0), axis=1), np.sort(np.minimum(w, 0), axis=1)
    return int(U8_MAX * max((pos[:, -1] + pos[:, -2]).max(), -(neg[:, 0] + neg[:, 1]).min()))


def saturation_report(proto: onnx.ModelProto) -> dict:
    """Static proof (or disproof) that no u8 x s8 pair sum of this model can saturate int16.

    Looks at every int8 matrix the integer kernels multiply by (weights behind a DequantizeLinear,
    or fed to MatMulInteger), along its reduction axis."""
    inits = {t.name: t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))
    worst, checked = 0, 0
    for name, tensor in inits.items():
        uses = consumers.get(name, [])
        for node, i in uses:
            if node.op_type == "DequantizeLinear":  # QDQ: follow to the op that multiplies
                uses = uses + consumers.get(node.output[0], [])
        axes = {_k_axis(n, i) for n, i in uses if n.op_type != "DequantizeLinear"}
        k_axis = axes.pop() if len(axes) == 1 else None
        worst = max(worst, worst_pair_sum(numpy_helper.to_array(tensor), k_axis))
        checked += 1
    return {"int8_weight_tensors": checked, "worst_pair_sum": worst, "int16_max": INT16_MAX,
            "saturation_free": worst <= INT16_MAX}
