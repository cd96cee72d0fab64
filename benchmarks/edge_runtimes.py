"""Against the edge runtimes people pick instead: onnxruntime, LiteRT (the TFLite interpreter) and
ExecuTorch (XNNPACK), the same trained MLP in each, fp32 and int8, timed in one process.

    pip install -e '.[train,compare]'
    python -m benchmarks.edge_runtimes [--checkpoint exported/mlp.pt] [--seconds 3] [--threads 1] [--json] [--tiny]

The checkpoint is folded (normalization and batch norm in the Linear layers: the function of the ONNX
graph) and converted: ExecuTorch `.pte` through torch.export + the XNNPACK partitioner (int8: PT2E with
the XNNPACK quantizer, symmetric per-channel weights), LiteRT `.tflite` through litert-torch (int8:
its PT2E quantizer, the same scheme), both calibrated on the same 1,000 seeded training images the
edgemnist quantizer uses. onnxruntime runs exported/mlp.onnx and exported/mlp.int8.onnx (IOBinding),
and the int8 model's uint8-input twin (`export --input uint8`) made from it here.
Each model's accuracy and top-1 agreement with PyTorch are checked on the 10,000 test images, then
batch-1 latency and batch-1024 throughput are timed in interleaved rounds (same thread count for
all), with each runtime's empty-model floor; cold start (fresh process to first answer) and peak RSS
are measured in subprocesses. Models have a static batch size in LiteRT and ExecuTorch, so each is
converted at batch 1, 1024 and 1000 (accuracy). `--tiny` runs everything briefly (smoke test).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch

from edgemnist import data, runtime
from edgemnist.contract import images_to_pixels
from edgemnist.cpu import cpu_info, describe
from edgemnist.settings import QuantSettings
from edgemnist.timing import interleaved, model_call
from edgemnist.training.model import fold
from edgemnist.training.quantize import calibration_sample, uint8_input
from edgemnist.training.train import load_checkpoint, predict
from testkit.floor import empty_model
from testkit.timing import timing_parser

ROOT = Path(__file__).resolve().parents[1]

BATCHES = {"latency": 1, "throughput": 1024, "accuracy": 1000}


class Identity(torch.nn.Module):
    """The empty model: what a call costs a runtime before any compute."""

    def forward(self, x):
        return x.flatten(1)[:, :10] * 1.0


# --- conversions: module -> file, one static batch size ------------------------------------------


def calibrated_pt2e(module, example, quantizer, calibration: np.ndarray, fold_quantize: bool = True):
    """PT2E: export, insert observers, calibrate on the training sample, convert to Q/DQ form."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    graph = torch.export.export(module, (example,)).module()
    prepared = prepare_pt2e(graph, quantizer)
    b = example.shape[0]  # the export's static batch: the sample cycled to whole batches (min/max unchanged)
    cycled = np.resize(calibration, (-(-len(calibration) // b) * b, *calibration.shape[1:]))
    for i in range(0, len(cycled), b):
        prepared(torch.from_numpy(cycled[i : i + b]))
    return convert_pt2e(prepared, fold_quantize=fold_quantize)


def to_executorch(module, batch: int, int8: bool, calibration: np.ndarray, out: Path) -> Path:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from executorch.exir import to_edge_transform_and_lower

    example = torch.rand(batch, 1, 28, 28)
    if int8:
        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
        module = calibrated_pt2e(module, example, quantizer, calibration)
    program = to_edge_transform_and_lower(torch.export.export(module, (example,)), partitioner=[XnnpackPartitioner()]).to_executorch()
    out.write_bytes(program.buffer)
    return out


def to_litert(module, batch: int, int8: bool, calibration: np.ndarray, out: Path) -> Path:
    import litert_torch

    example = torch.rand(batch, 1, 28, 28)
    if not int8:
        litert_torch.convert(module.eval(), (example,)).export(str(out))
        return out
    # litert-torch wants the Q/DQ ops unfolded, and the quantizer again so that its converter runs
    # in static QDQ mode (int8 kernels) instead of keeping float weights with (de)quantize ops
    from litert_torch.quantize import pt2e_quantizer, quant_config

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    module = calibrated_pt2e(module, example, quantizer, calibration, fold_quantize=False)
    litert_torch.convert(module, (example,), quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer)).export(str(out))
    return out


# --- runners: file -> a call on pre-set input, and logits ----------------------------------------


def litert_runner(path: Path, batch: int, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

    def to_input(x: np.ndarray) -> np.ndarray:
        """The int8 model takes quantized pixels: quantize them here, outside the timed `invoke`."""
        if inp["dtype"] == np.float32:
            return x.astype(np.float32)
        scale, zero = inp["quantization"]
        info = np.iinfo(inp["dtype"])
        return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(inp["dtype"])

    def logits(x: np.ndarray) -> np.ndarray:
        interp.set_tensor(inp["index"], to_input(x))
        interp.invoke()
        y = interp.get_tensor(out["index"]).astype(np.float32)
        scale, zero = out["quantization"]
        return (y - zero) * scale if out["dtype"] != np.float32 else y

    interp.set_tensor(inp["index"], to_input(np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32)))
    return interp.invoke, logits


def executorch_runner(path: Path, batch: int, threads: int):
    from executorch.runtime import Runtime

    blob = path.read_bytes()  # the program points into this buffer: it must live as long as the method
    method = Runtime.get().load_program(blob).load_method("forward")
    x = torch.rand(batch, 1, 28, 28)

    def logits(pixels: np.ndarray, keep=blob) -> np.ndarray:
        return method.execute([torch.from_numpy(np.ascontiguousarray(pixels))])[0].numpy().copy()

    return (lambda keep=blob: method.execute([x])), logits


def ort_runner(path: Path, batch: int, threads: int):
    model = runtime.open_model(path, "cpu", threads, quiet=True)
    return model_call(model, batch), model.logits


RUNNERS = {"onnxruntime": ort_runner, "litert": litert_runner, "executorch": executorch_runner}


def set_threads(threads: int) -> None:
    """ExecuTorch's XNNPACK threadpool is process-wide (LiteRT and onnxruntime take it per model)."""
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    _unsafe_reset_threadpool(threads)


def empty_onnx(out: Path) -> Path:
    out.write_bytes(empty_model().SerializeToString())
    return out


def convert_all(folded, calibration: np.ndarray, tmp: Path, tiny: bool) -> dict[tuple[str, str, int], Path]:
    """(runtime, precision, batch) -> model file; precision "empty" is each runtime's floor."""
    files = {}
    batches = sorted(set(BATCHES.values()) - ({1024} if tiny else set()))
    for b in batches:
        files["onnxruntime", "fp32", b] = ROOT / "exported/mlp.onnx"
        files["onnxruntime", "int8", b] = ROOT / "exported/mlp.int8.onnx"
    twin = uint8_input(onnx.load(ROOT / "exported/mlp.int8.onnx"))  # what `export --input uint8` writes beside it
    onnx.save(twin, tmp / "mlp.int8.uint8.onnx")
    for b in batches:
        files["onnxruntime", "int8-uint8-input", b] = tmp / "mlp.int8.uint8.onnx"
    files["onnxruntime", "empty", 1] = empty_onnx(tmp / "empty.onnx")
    for name, convert, ext in (("executorch", to_executorch, "pte"), ("litert", to_litert, "tflite")):
        for b in batches:
            for precision in ("fp32", "int8"):
                files[name, precision, b] = convert(folded, b, precision == "int8", calibration, tmp / f"{name}-{precision}-{b}.{ext}")
        files[name, "empty", 1] = convert(Identity().eval(), 1, False, calibration, tmp / f"{name}-empty.{ext}")
    return files


def accuracy(files: dict, pixels: np.ndarray, labels: np.ndarray, reference: np.ndarray, threads: int) -> dict:
    """(runtime, precision) -> accuracy and top-1 agreement with PyTorch on the whole test set."""
    b = BATCHES["accuracy"]
    result = {}
    for (name, precision, batch), path in files.items():
        if batch != b or precision == "empty":
            continue
        _, logits = RUNNERS[name](path, b, threads)
        out = np.concatenate([logits(pixels[i : i + b]) for i in range(0, len(pixels), b)])
        result[name, precision] = {"accuracy": float((out.argmax(1) == labels).mean()),
                                   "agreement_with_torch": float((out.argmax(1) == reference.argmax(1)).mean())}
    return result


def timing(files: dict, batch: int, threads: int, seconds: float, rounds: int = 10) -> dict:
    """(runtime, precision) -> latencies in µs at this batch size, all runtimes interleaved."""
    calls = {(n, p): RUNNERS[n](path, batch, threads)[0] for (n, p, b), path in files.items() if b == batch}
    return interleaved(calls, seconds * len(calls), rounds)


# Fresh process to first answer, importing only what each runtime's Python API needs
COLD = {
    "onnxruntime": "import numpy as np, onnxruntime as ort\n"
                   "s = ort.InferenceSession(PATH, providers=['CPUExecutionProvider'])\n"
                   "i = s.get_inputs()[0]\n"
                   "s.run(None, {i.name: np.zeros((1, 1, 28, 28), np.uint8 if i.type == 'tensor(uint8)' else np.float32)})",
    "litert": "import numpy as np\nfrom ai_edge_litert.interpreter import Interpreter\n"
              "i = Interpreter(model_path=PATH, num_threads=1); i.allocate_tensors(); d = i.get_input_details()[0]\n"
              "i.set_tensor(d['index'], np.zeros(d['shape'], d['dtype'])); i.invoke()",
    "executorch": "import torch\nfrom executorch.runtime import Runtime\n"
                  "blob = open(PATH, 'rb').read(); m = Runtime.get().load_program(blob).load_method('forward')\n"
                  "m.execute([torch.zeros(1, 1, 28, 28)])",
}


def cold_start(name: str, path: Path) -> dict:
    """Fresh process to first answer (imports, model load, one inference), and its peak RSS."""
    start = time.perf_counter()
    # the child's own high-water mark (getrusage of a child forked from this big process would
    # report this process's peak: Linux keeps it across fork and exec)
    code = f"PATH = {str(path)!r}\n" + COLD[name] + "\nprint(open('/proc/self/status').read())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    hwm = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("VmHWM:")]
    if proc.returncode != 0 or not hwm:
        return {"cold_start_s": None, "peak_rss_mb": None}
    return {"cold_start_s": seconds, "peak_rss_mb": int(hwm[0]) / 1024}


def measure(checkpoint: Path, threads: int, seconds: float, tiny: bool) -> dict:
    mnist = data.load(quiet=True)
    model, _ = load_checkpoint(checkpoint)
    folded = fold(model)
    settings = QuantSettings()
    calibration = calibration_sample(mnist.train_images, settings.calibration_size, settings.seed)
    n = 2000 if tiny else len(mnist.test_labels)
    pixels, labels = images_to_pixels(mnist.test_images[:n]), mnist.test_labels[:n].astype(np.int64)
    reference = predict(model, torch.from_numpy(pixels)).numpy()
    set_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(sys.stderr):  # litert-torch reports its progress on stdout
            files = convert_all(folded, calibration, Path(tmp), tiny)
        acc = accuracy(files, pixels, labels, reference, threads)
        lat1 = timing(files, 1, threads, seconds)
        lat1024 = timing(files, 1024, threads, seconds) if not tiny else {}
        kinds = [key for key in lat1 if key[1] != "empty"]
        cold = {(n_, p): cold_start(n_, files[n_, p, 1]) for n_, p in kinds}
        sizes = {(n_, p): files[n_, p, 1].stat().st_size for n_, p in kinds}
    rows = []
    for (name, precision), a in sorted(lat1.items()):
        if precision == "empty":
            continue
        big = lat1024.get((name, precision))
        ort_file = {"fp32": "exported/mlp.onnx", "int8": "exported/mlp.int8.onnx"}.get(precision, "exported/mlp.int8.onnx, uint8-input twin")
        rows.append({"runtime": name, "precision": precision, "model": ort_file if name == "onnxruntime" else f"{name} conversion of {checkpoint}", "batch_size": 1,
                     "p50_us": float(np.percentile(a, 50)), "p90_us": float(np.percentile(a, 90)),
                     "images_per_s": float(1e6 / a.mean()), **acc[name, precision], **cold[name, precision],
                     "size_bytes": sizes[name, precision]})
        if big is not None:
            rows.append({**rows[-1], "batch_size": 1024, "p50_us": float(np.percentile(big, 50)),
                         "p90_us": float(np.percentile(big, 90)), "images_per_s": float(1024e6 / big.mean())})
    floors = {name: float(np.percentile(a, 50)) for (name, precision), a in lat1.items() if precision == "empty"}
    return {"cpu": cpu_info(), "threads": threads, "n_test_images": n, "rows": rows, "floors": floors,
            "versions": versions()}


def versions() -> dict:
    from importlib.metadata import version

    return {p: version(p) for p in ("onnxruntime", "executorch", "ai-edge-litert", "litert-torch", "torch")}


def print_table(r: dict) -> None:
    print(f"{describe(r['cpu'])}; {r['threads']} thread(s); " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + "\n")
    print("| runtime | precision | accuracy | agreement with PyTorch | batch-1 p50 / p90 µs | batch-1024 images/s | cold start s | peak RSS MB | size |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in (x for x in r["rows"] if x["batch_size"] == 1):
        big = next((x for x in r["rows"] if x["batch_size"] == 1024 and x["runtime"] == row["runtime"] and x["precision"] == row["precision"]), None)
        cold = f"{row['cold_start_s']:.2f}" if row["cold_start_s"] else "failed"
        rss = f"{row['peak_rss_mb']:.0f}" if row["peak_rss_mb"] else "-"
        print(f"| {row['runtime']} | {row['precision']} | {row['accuracy']:.2%} | {row['agreement_with_torch']:.2%} | "
              f"{row['p50_us']:.1f} / {row['p90_us']:.1f} | {big['images_per_s']:,.0f} | {cold} | {rss} | {row['size_bytes']:,} |"
              if big else f"| {row['runtime']} | {row['precision']} | {row['accuracy']:.2%} | | {row['p50_us']:.1f} | | {cold} | {rss} | |")
    print("\nempty-model floor, batch-1 p50 µs: " + ", ".join(f"{k} {v:.1f}" for k, v in r["floors"].items()))


def main() -> None:
    ap = timing_parser(__doc__, 3.0)
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "exported/mlp.pt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tiny", action="store_true", help="2,000 test images, no batch 1024, short timing (smoke test)")
    args = ap.parse_args()
    report = measure(args.checkpoint, args.threads, 0.3 if args.tiny else args.seconds, args.tiny)
    print(json.dumps(report)) if args.json else print_table(report)


if __name__ == "__main__":
    main()
