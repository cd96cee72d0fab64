"""Which int8 format: accuracy, agreement with the reference semantics, and speed of each candidate,
quantized from the same fp32 model and measured side by side on this CPU.

    python -m benchmarks.int8_formats [--fp32 exported/mlp.onnx] [--seconds 6] [--json]

Candidates: the project's settings (`edgemnist export` options: 8- vs 7-bit weights, per-tensor vs
per-channel, static vs dynamic; static ones with float logits, as exported) plus two formats onnxruntime offers that edgemnist does not ship (u8
weights, s8 activations), for comparison. "fused" is the default session (this CPU's integer
kernels), "reference" the same file with graph optimizations off. Speed: one thread, IOBinding,
rounds interleaved across candidates, median per-call latency.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgemnist import data, runtime
from edgemnist.contract import images_to_pixels
from edgemnist.cpu import cpu_info, describe
from edgemnist.settings import QuantSettings
from edgemnist.timing import interleaved, model_call
from edgemnist.training.quantize import SampleReader, calibration_sample, float_logits, quantize, saturation_report
from edgemnist.verify import compare, reference_semantics
from testkit.timing import timing_parser

ROOT = Path(__file__).resolve().parents[1]

PROJECT = {
    "static per-channel, 8-bit weights (first default)": QuantSettings(per_channel=True, weight_bits=8),
    "static per-channel, 7-bit weights (`--per-channel`)": QuantSettings(per_channel=True),
    "static per-tensor, 8-bit weights": QuantSettings(weight_bits=8),
    "static per-tensor, 7-bit weights (default)": QuantSettings(),
    "dynamic per-channel, 7-bit weights": QuantSettings(method="dynamic", per_channel=True),
    "dynamic per-tensor, 7-bit weights (`--method dynamic`)": QuantSettings(method="dynamic"),
}
OTHERS = {  # not edgemnist options: onnxruntime's other type pairs, static per-tensor, float logits
    "static per-tensor, u8 weights (u8u8)": {"activation_type": QuantType.QUInt8, "weight_type": QuantType.QUInt8},
    "static per-tensor, s8 activations (s8s8)": {"activation_type": QuantType.QInt8, "weight_type": QuantType.QInt8},
}


def build(fp32_path: Path, train_images: np.ndarray, tmp: Path) -> dict[str, Path]:
    fp32 = onnx.load(fp32_path)
    paths = {}
    for i, (name, settings) in enumerate(PROJECT.items()):
        paths[name] = tmp / f"p{i}.onnx"
        onnx.save(quantize(fp32, settings, train_images), paths[name])
    pre = tmp / "pre.onnx"
    quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=False)
    sample = calibration_sample(train_images, QuantSettings.calibration_size, QuantSettings.seed)
    for i, (name, types) in enumerate(OTHERS.items()):
        paths[name] = tmp / f"o{i}.onnx"
        quantize_static(str(pre), str(paths[name]), SampleReader(sample), quant_format=QuantFormat.QDQ, per_channel=False,
                        extra_options={"CalibTensorRangeSymmetric": False}, **types)
        onnx.save(float_logits(onnx.load(paths[name])), paths[name])
    return paths


def speed(paths: dict[str, Path], batch: int, seconds: float, rounds: int = 30) -> dict[str, float]:
    """Median per-call µs of each model at this batch size, rounds interleaved (bench's IOBinding call)."""
    models = {name: runtime.open_model(path, "cpu", 1, quiet=True) for name, path in paths.items()}
    calls = {name: model_call(m, batch) for name, m in models.items()}
    return {name: float(np.median(v)) for name, v in interleaved(calls, seconds * len(calls), rounds).items()}


def pair_sum(r: dict) -> str:
    if not r["int8_weight_tensors"]:
        return "n/a (u8 weights)"
    return f"{r['worst_pair_sum']:,}" + ("" if r["saturation_free"] else " ✗ saturates")


def main() -> None:
    ap = timing_parser(__doc__, 6.0, "timed seconds per model and batch size (the machine is noisy: fewer move batch-1 figures by 30%%)")
    ap.add_argument("--fp32", type=Path, default=ROOT / "exported/mlp.onnx")
    args = ap.parse_args()
    mnist = data.load(quiet=True)
    pixels, labels = images_to_pixels(mnist.test_images), mnist.test_labels.astype(np.int64)
    fp32_logits = runtime.open_model(args.fp32, "cpu", quiet=True).logits(pixels, batch_size=len(pixels))
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(args.fp32, mnist.train_images, Path(tmp))
        rows = []
        for name, path in paths.items():
            fused = runtime.open_model(path, "cpu", quiet=True).logits(pixels, batch_size=len(pixels))
            ref = reference_semantics(path, fused, pixels, labels)
            sat = saturation_report(onnx.load(path))
            vs_fp32 = compare(fp32_logits, fused, labels)
            rows.append({"format": name, "accuracy": vs_fp32["accuracy"],
                         "reference_accuracy": ref["accuracy"], "fused_vs_reference_agreement": ref["agreement"],
                         "fused_vs_reference_max_abs_dlogit": ref["max_abs_dlogit"],
                         "agreement_with_fp32": vs_fp32["agreement"],
                         "int8_weight_tensors": sat["int8_weight_tensors"], "worst_pair_sum": sat["worst_pair_sum"], "saturation_free": sat["saturation_free"],
                         "size_bytes": path.stat().st_size})
        timed = {"fp32": args.fp32, **paths}
        b1, b1024 = speed(timed, 1, args.seconds), speed(timed, 1024, args.seconds)
    for r in rows:
        name = r["format"]
        r |= {"batch1_p50_us": b1[name], "batch1024_images_per_s": 1024e6 / b1024[name],
              "batch1024_vs_fp32": b1024["fp32"] / b1024[name]}
    report = {"cpu": cpu_info(), "fp32": {"batch1_p50_us": b1["fp32"], "batch1024_images_per_s": 1024e6 / b1024["fp32"]}, "rows": rows}
    if args.json:
        print(json.dumps(report))
        return
    print(f"{describe()}; 1 thread; fp32: batch-1 p50 {b1['fp32']:.1f} µs, batch 1024 {1024e6 / b1024['fp32']:,.0f} images/s\n")
    print("| format | accuracy (fused) | reference | fused vs reference: agreement / max \\|Δlogit\\| | agreement with fp32 "
          "| worst pair sum | batch-1 p50 µs | batch-1024 images/s | int8/fp32 at 1024 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['format']} | {r['accuracy']:.2%} | {r['reference_accuracy']:.2%} | {r['fused_vs_reference_agreement']:.2%} / "
              f"{r['fused_vs_reference_max_abs_dlogit']:.3g} | {r['agreement_with_fp32']:.2%} | {pair_sum(r)} | {r['batch1_p50_us']:.1f} | {r['batch1024_images_per_s']:,.0f} "
              f"| {r['batch1024_vs_fp32']:.2f}× |")


if __name__ == "__main__":
    main()
