"""Where onnxruntime's batch-1 time goes: the int8 model cut after each layer, timed side by side.

    python -m benchmarks.batch1_breakdown [--model exported/mlp.int8.onnx] [--seconds 8] [--json]

onnxruntime's profiler adds its own cost to every node (`bench --profile` shows shares, not times).
This measures without it: for k = 1..L the model truncated after its k-th Gemm (that layer's output
leaves in float, like the last layer of the shipped model), plus an empty model (Flatten + Slice:
the cost of a call and of a session run), all timed in interleaved rounds on one thread with the
same pre-bound call `bench` uses, and the public `run_with_iobinding` and `run` for the whole model.
The increments between truncations are each layer's cost as the session runs it: kernel and
per-node overhead together. Runtime side only: onnxruntime + numpy.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from edgemnist import runtime
from edgemnist.cpu import cpu_info, describe
from edgemnist.timing import bound_call, interleaved
from testkit.floor import empty_model
from testkit.timing import timing_parser

ROOT = Path(__file__).resolve().parents[1]


def layer_widths(proto: onnx.ModelProto) -> list[tuple[onnx.NodeProto, int]]:
    """Each Gemm and its output width, read from its (dequantized) weight initializer."""
    inits = {t.name: t for t in proto.graph.initializer}
    producer = {out: node for node in proto.graph.node for out in node.output}
    found = []
    for node in proto.graph.node:
        if node.op_type != "Gemm":
            continue
        weight = node.input[1]
        while weight not in inits:  # behind a DequantizeLinear
            weight = producer[weight].input[0]
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        dims = inits[weight].dims
        found.append((node, dims[0] if trans_b else dims[1]))
    return found


def truncated(proto: onnx.ModelProto, k: int) -> onnx.ModelProto:
    """The model up to its k-th Gemm, whose output (float) becomes the graph's output."""
    gemm, width = layer_widths(proto)[k - 1]
    producer = {out: node for node in proto.graph.node for out in node.output}
    needed, stack = set(), [gemm.output[0]]
    while stack:  # every node the k-th Gemm depends on
        node = producer.get(stack.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            stack.extend(node.input)
    nodes = [n for n in proto.graph.node if id(n) in needed]
    used = {name for n in nodes for name in n.input}
    graph = helper.make_graph(
        nodes, f"first_{k}", list(proto.graph.input),
        [helper.make_tensor_value_info(gemm.output[0], TensorProto.FLOAT, ["N", width])],
        [t for t in proto.graph.initializer if t.name in used])
    return helper.make_model(graph, opset_imports=proto.opset_import, ir_version=proto.ir_version)


def measure(model: Path, seconds: float) -> dict:
    proto = onnx.load(model)
    layers = layer_widths(proto)
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    calls = {}
    with tempfile.TemporaryDirectory() as tmp:
        parts = [("empty model", empty_model(), 10)] + [
            (f"first {k} layer{'s' if k > 1 else ''}", truncated(proto, k), w) for k, (_, w) in enumerate(layers, 1)]
        for name, part, width in parts:
            path = Path(tmp, f"{len(calls)}.onnx")
            onnx.save(part, path)
            session = ort.InferenceSession(str(path), runtime.session_options(1), providers=[runtime.CPU])
            calls[name] = bound_call(session, session.get_inputs()[0].name, x, width)
        whole = runtime.open_model(model, "cpu", 1, quiet=True)
        binding = whole.session.io_binding()
        binding.bind_cpu_input(whole.input_name, x)
        binding.bind_output(whole.session.get_outputs()[0].name, "cpu")
        feeds = {whole.input_name: x}
        calls["whole model, public run_with_iobinding"] = lambda: whole.session.run_with_iobinding(binding)
        calls["whole model, session.run"] = lambda: whole.session.run(None, feeds)
        times = interleaved(calls, seconds * len(calls), 40, warmup=200)
    rows, previous = [], None
    for name, t in times.items():
        p50, p10 = float(np.percentile(t, 50)), float(np.percentile(t, 10))
        step = name.startswith("first") or name == "empty model"
        rows.append({"part": name, "p50_us": p50, "p10_us": p10,
                     "step_p50_us": p50 - previous[0] if step and previous else None,
                     "step_p10_us": p10 - previous[1] if step and previous else None})
        if step:
            previous = (p50, p10)
    return {"cpu": cpu_info(), "model": str(model), "onnxruntime": ort.__version__, "threads": 1,
            "layers": [w for _, w in layers], "rows": rows}


def main() -> None:
    ap = timing_parser(__doc__, 8.0, "timed seconds per part")
    ap.add_argument("--model", type=Path, default=ROOT / "exported/mlp.int8.onnx")
    args = ap.parse_args()
    r = measure(args.model, args.seconds)
    if args.json:
        print(json.dumps(r))
        return
    print(f"{describe(r['cpu'])}; onnxruntime {r['onnxruntime']}; 1 thread; {r['model']}\n")
    print("| part | batch-1 p50 µs | p10 µs | step p50 / p10 µs |\n| --- | ---: | ---: | ---: |")
    for row in r["rows"]:
        step = f"{row['step_p50_us']:+.1f} / {row['step_p10_us']:+.1f}" if row["step_p50_us"] is not None else ""
        print(f"| {row['part']} | {row['p50_us']:.1f} | {row['p10_us']:.1f} | {step} |")


if __name__ == "__main__":
    main()
