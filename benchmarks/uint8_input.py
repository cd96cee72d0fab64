"""The uint8-input twin of the int8 model (`export --input uint8`): is it exact,
and is it faster?

    python -m benchmarks.uint8_input [--int8 exported/mlp.int8.onnx] [--seconds 6] [--json]

The int8 model quantizes its float input with scale 1/255 and zero point 0, so a uint8 picture *is*
its quantized input. The twin (`quantize.uint8_input`) drops that QuantizeLinear node and takes `pixels` as uint8
[N, 1, 28, 28] (0-255) straight into the DequantizeLinear that follows; everything else is the same
file. Checked here: its logits equal the int8 model's, bit for bit, on the 10,000 MNIST test images
(uint8 fed to the variant, the same images / 255 to the model) and on every one of the 256 levels.
Timed: batch-1 p50 and batch-1024 throughput of both, one thread, bench's IOBinding call, rounds
interleaved.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx

from edgemnist import data, runtime
from edgemnist.contract import INPUT_NAME
from edgemnist.cpu import cpu_info, describe
from edgemnist.timing import interleaved, model_call
from edgemnist.training.quantize import uint8_input
from testkit.timing import timing_parser

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = timing_parser(__doc__, 6.0)
    ap.add_argument("--int8", type=Path, default=ROOT / "exported/mlp.int8.onnx")
    args = ap.parse_args()
    mnist = data.load(quiet=True)
    images = mnist.test_images[:, None]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "mlp.int8.uint8-input.onnx")
        twin = uint8_input(onnx.load(args.int8))
        onnx.save(twin, path)
        size = path.stat().st_size
        shipped = runtime.open_model(args.int8, "cpu", 1, quiet=True)
        variant = runtime.open_model(path, "cpu", 1, quiet=True)
        models = {"float32 input (shipped)": shipped, "uint8 input (variant)": variant}
        levels = np.repeat(np.arange(256, dtype=np.uint8), 784 // 256 + 1)[:784].reshape(1, 1, 28, 28)
        exact = {}
        for name, u8 in (("10,000 test images", images), ("all 256 levels", levels)):
            a = shipped.session.run(None, {INPUT_NAME: u8.astype(np.float32) / 255})[0]
            b = variant.session.run(None, {INPUT_NAME: u8})[0]
            exact[name] = float(np.abs(a - b).max())
        accuracy = float((variant.session.run(None, {INPUT_NAME: images})[0].argmax(1) == mnist.test_labels).mean())
        speed = {}
        for batch in (1, 1024):
            calls = {name: model_call(m, batch) for name, m in models.items()}  # uint8 pixels for the variant
            speed[batch] = {k: float(np.median(v)) for k, v in interleaved(calls, args.seconds * 2, 30).items()}
    report = {"cpu": cpu_info(), "max_abs_dlogit": exact, "accuracy": accuracy, "size_bytes": size, "p50_us": speed}
    if args.json:
        print(json.dumps(report))
        return
    print(f"{describe()}; 1 thread; {args.int8}")
    print("variant vs shipped, max |Δlogit|: " + ", ".join(f"{k} {v:g}" for k, v in exact.items()) + f"; variant accuracy {accuracy:.2%}\n")
    print("| int8 model | batch-1 p50 µs | batch 1024 p50 µs | batch-1024 images/s | input bytes per image |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in models:
        b1, b1024 = speed[1][name], speed[1024][name]
        print(f"| {name} | {b1:.2f} | {b1024:,.0f} | {1024e6 / b1024:,.0f} | {784 if 'uint8' in name else 3136:,} |")
    s1, s1024 = (speed[b]["float32 input (shipped)"] / speed[b]["uint8 input (variant)"] for b in (1, 1024))
    print(f"\nshipped / variant: batch 1 {s1:.3f}×, batch 1024 {s1024:.3f}×")


if __name__ == "__main__":
    main()
