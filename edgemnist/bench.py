"""`edgemnist bench`: latency percentiles and throughput, every backend side by side in one run.
[runtime side; torch only for the optional PyTorch baseline, onnx only for the optional ceiling]

collect the backends (PyTorch eager as trained and folded, one per ONNX model, the MatMul ceiling) ->
measure them in interleaved rounds (a seeded shuffled order each round, so machine noise hits them
alike) -> summarize into rows with ratios taken only between rows of the same run -> report.
The ceiling is a plain chain of MatMuls of the model's own layer shapes (no bias, no activation) run
by the same engine (onnxruntime's MLAS), at the largest batch size.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort

from edgemnist import UserError, atomic, contract, runtime
from edgemnist.cpu import cpu_info
from edgemnist.progress import bar, say
from edgemnist.settings import DEFAULT_CHECKPOINT, DEFAULT_INT8, DEFAULT_ONNX, MLPConfig, macs
from edgemnist.timing import ROUNDS, bound_call, interleaved, model_call, time_for

CEILING = "ceiling-matmul"


@dataclass
class Backend:
    name: str  # torch-fp32 | torch-fp32-folded | ort-<precision>[:<model stem>] | ceiling-matmul
    provider: str
    model: str
    shapes: tuple[int, ...] | None  # layer widths from input to output; None when unknown
    make: Callable[[int, int], Callable[[], object]]  # (batch, threads) -> a call that runs one batch
    sha256: str | None = None  # of the ONNX file's bytes, as loaded


MAX_BATCH = 65_536  # 205 MB of float32 input per call: far past where images/s stops growing here


def parse_batch_sizes(text: str) -> list[int]:
    want = f"--batch-sizes wants comma-separated integers from 1 to {MAX_BATCH:,}, got {text!r}"
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(want) from None
    if not sizes or any(not 1 <= s <= MAX_BATCH for s in sizes):
        raise UserError(want)
    return sizes


def parse_models(text: str | None) -> list[Path]:
    if text:
        paths = [Path(s.strip()) for s in text.split(",") if s.strip()]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise UserError(f"model not found: {', '.join(missing)}")
        return paths
    paths = [p for p in (DEFAULT_ONNX, DEFAULT_INT8) if p.is_file()]
    if not paths:
        raise UserError("no models to benchmark: run `edgemnist export --quantize` or pass --models")
    return paths


def model_shapes(model: runtime.Model) -> tuple[int, ...] | None:
    """Layer widths from the model's edgemnist metadata (`edgemnist.architecture`)."""
    hidden = model.metadata_json("edgemnist.architecture", {}).get("hidden")
    if not isinstance(hidden, list) or not all(isinstance(h, int) and 0 < h < 1 << 16 for h in hidden):
        return None
    return MLPConfig(hidden=hidden).shapes


def ort_backend(path: Path, provider: str, taken: set[str], allow_failed_gate: bool = False) -> Backend:
    open_with = functools.cache(lambda threads: runtime.open_model(path, provider, threads, quiet=True, allow_failed_gate=allow_failed_gate))
    model = open_with(runtime.default_threads())
    precision = model.metadata.get("edgemnist.precision") or ("int8" if ".int8." in path.name else "fp32")
    precision += "-uint8-input" * model.takes_uint8
    name = f"ort-{precision}" if f"ort-{precision}" not in taken else f"ort-{precision}:{path.stem}"
    taken.add(name)

    def make(batch: int, threads: int):
        return model_call(open_with(threads), batch)

    say(f"model: {model.describe()}")
    return Backend(name, model.providers[0], str(path), model_shapes(model), make, model.sha256)


def matmul_ceiling_backend(shapes: tuple[int, ...]) -> Backend | None:
    """The same shapes as plain MatMuls (no bias, no ReLU) through onnxruntime; None without onnx."""
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None

    rng = np.random.default_rng(0)
    inits, nodes, prev = [], [], "x"
    for i, (a, b) in enumerate(zip(shapes, shapes[1:])):
        inits.append(numpy_helper.from_array(rng.standard_normal((a, b)).astype(np.float32) * 0.05, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]))
        prev = f"h{i}"
    graph = helper.make_graph(
        nodes, "ceiling", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", shapes[0]])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", shapes[-1]])], inits,
    )
    blob = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()
    session_for = functools.cache(
        lambda threads: ort.InferenceSession(blob, runtime.session_options(threads), providers=[runtime.CPU])
    )

    def make(batch: int, threads: int):
        return bound_call(session_for(threads), "x", rng.random((batch, shapes[0]), dtype=np.float32), shapes[-1])

    return Backend(CEILING, runtime.CPU, "plain MatMul chain " + "-".join(map(str, shapes)), shapes, make)


def torch_backends(checkpoint: Path) -> list[Backend]:
    """PyTorch eager: the checkpoint's model as trained (what a PyTorch user runs), and the folded
    model (the same function as the ONNX graph), so the table shows what folding alone buys."""
    import torch

    from edgemnist.training.model import fold
    from edgemnist.training.train import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    shapes = model.config.shapes

    def maker(module):
        def make(batch: int, threads: int):
            x = torch.rand(batch, 1, contract.IMAGE_SIZE, contract.IMAGE_SIZE)

            def call():
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
                with torch.inference_mode():
                    return module(x)

            return call

        return make

    return [
        Backend("torch-fp32", "torch-cpu", str(checkpoint), shapes, maker(model.eval())),
        Backend("torch-fp32-folded", "torch-cpu", str(checkpoint), shapes, maker(fold(model))),
    ]


def collect(models: list[Path], checkpoint: Path | None, use_torch: bool, provider: str, notes: list[str],
            allow_failed_gate: bool = False) -> list[Backend]:
    """Every backend of the run; what is skipped (torch missing, no shapes for a ceiling) goes to notes."""
    backends: list[Backend] = []
    if use_torch:
        ckpt = checkpoint or DEFAULT_CHECKPOINT
        try:
            import torch  # noqa: F401
        except ImportError:
            notes.append("PyTorch baseline skipped: torch is not installed")
        else:
            if ckpt.is_file():
                backends += torch_backends(ckpt)
            elif checkpoint is not None:
                raise UserError(f"checkpoint {ckpt} not found")
            else:
                notes.append(f"PyTorch baseline skipped: no checkpoint at {ckpt}")
    taken: set[str] = set()
    backends += [ort_backend(p, provider, taken, allow_failed_gate) for p in models]
    shapes = next((b.shapes for b in backends if b.name.startswith("ort-") and b.shapes), None)
    ceiling = matmul_ceiling_backend(shapes) if shapes else None
    if ceiling:
        backends.append(ceiling)
    else:
        notes.append("no ceiling: " + ("onnx is not installed" if shapes else "no model carries edgemnist.architecture metadata"))
    return backends


def pick_threads(backend: Backend, batch: int, candidates: list[int]) -> tuple[int, Callable[[], object]]:
    """The thread count with the lowest median latency in short interleaved trials (tiny models
    often run fastest on one thread at small batches: no synchronisation)."""
    calls = {t: backend.make(batch, t) for t in candidates}
    trials: dict[int, list[float]] = {t: [] for t in candidates}
    for call in calls.values():  # warm-up
        time_for(call, 0.05, [])
    for _ in range(3 if len(candidates) > 1 else 1):
        for t, call in calls.items():
            time_for(call, 0.06, trials[t])
    best = min(candidates, key=lambda t: float(np.median(trials[t])))
    return best, calls[best]


def measure(backends: list[Backend], batch_sizes: list[int], candidates: list[int], duration: float, quiet: bool):
    """Per (backend index, batch): the latencies in µs and the thread count used."""
    latencies: dict[tuple[int, int], list[float]] = {}
    chosen: dict[tuple[int, int], int] = {}
    with bar(quiet=quiet) as progress:
        task = progress.add_task("bench", total=len(batch_sizes) * ROUNDS, status="")
        for batch in batch_sizes:
            active = [i for i, b in enumerate(backends) if b.name != CEILING or batch == max(batch_sizes)]
            calls = {}
            for i in active:  # warm-up, and the thread count
                chosen[i, batch], calls[i] = pick_threads(backends[i], batch, candidates)
            samples = interleaved(calls, duration * len(calls), ROUNDS, warmup=0,
                                  on_round=lambda: progress.update(task, advance=1, status=f"batch {batch}"))
            latencies.update({(i, batch): v.tolist() for i, v in samples.items()})
    return latencies, chosen


def summarize(backends: list[Backend], latencies: dict, chosen: dict) -> list[dict]:
    """One row per backend and batch size: percentiles, throughput, GFLOP/s, and the ratios."""
    rows = []
    for (i, batch), lat in sorted(latencies.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        a, b = np.array(lat), backends[i]
        row = {
            "backend": b.name, "provider": b.provider, "model": b.model, "sha256": b.sha256, "batch_size": batch, "threads": chosen[i, batch],
            "p50_us": float(np.percentile(a, 50)), "p90_us": float(np.percentile(a, 90)),
            "p99_us": float(np.percentile(a, 99)), "mean_us": float(a.mean()), "calls": int(len(a)),
            "images_per_s": batch * len(a) / (a.sum() / 1e6), "shapes": list(b.shapes) if b.shapes else None,
        }
        if b.shapes:
            row["macs_per_image"] = macs(b.shapes)
            row["gflops"] = row["images_per_s"] * 2 * row["macs_per_image"] / 1e9
        rows.append(row)
    _add_ratios(rows)
    return rows


def _add_ratios(rows: list[dict]) -> None:
    """At the same batch size (same run): each ONNX row vs PyTorch eager as trained, each int8 row vs
    the first fp32 ONNX model, and each row vs the ceiling when it has the ceiling's shapes."""
    for batch in {r["batch_size"] for r in rows}:
        same = [r for r in rows if r["batch_size"] == batch]
        torch_row = next((r for r in same if r["backend"] == "torch-fp32"), None)
        fp32 = next((r for r in same if r["backend"].startswith("ort-fp32")), None)
        ceiling = next((r for r in same if r["backend"] == CEILING), None)
        for r in same:
            if torch_row and r["backend"].startswith("ort-"):
                r["vs_torch"] = r["images_per_s"] / torch_row["images_per_s"]
                r["p50_speedup_vs_torch"] = torch_row["p50_us"] / r["p50_us"]
            if fp32 and r["backend"].startswith("ort-int8"):
                r["int8_vs_fp32"] = r["images_per_s"] / fp32["images_per_s"]
                r["fp32_baseline"] = fp32["model"]
            if ceiling and r is not ceiling and r["shapes"] == ceiling["shapes"]:
                r["vs_ceiling"] = r["images_per_s"] / ceiling["images_per_s"]


def run(
    models: list[Path],
    batch_sizes: list[int],
    *,
    checkpoint: Path | None = None,
    use_torch: bool = True,
    threads: int | None = None,
    provider: str = "cpu",
    duration: float = 2.0,
    quiet: bool = False,
    allow_failed_gate: bool = False,
) -> dict:
    if not duration > 0:
        raise UserError(f"--duration must be positive, got {duration}")
    runtime.check_threads(threads)
    # without --threads, each backend and batch size gets the faster of 1 and all cores (same rule for all)
    candidates = [threads] if threads else sorted({1, runtime.default_threads()})
    notes: list[str] = []
    backends = collect(models, checkpoint, use_torch, provider, notes, allow_failed_gate)
    rows = summarize(backends, *measure(backends, batch_sizes, candidates, duration, quiet))
    ceiling = next((r for r in rows if r["backend"] == CEILING), None)
    notes += [f"int8 is SLOWER than fp32 on this host at batch {r['batch_size']} ({r['int8_vs_fp32']:.2f}x, {r['model']})"
              for r in rows if r.get("int8_vs_fp32", 1.0) < 1.0]
    return {
        "cpu": cpu_info(),
        "threads": candidates,
        "duration_s": duration,
        "rows": [r for r in rows if r is not ceiling],
        "ceiling": {"batch_size": ceiling["batch_size"], "images_per_s": ceiling["images_per_s"],
                    "p50_us": ceiling["p50_us"], "gflops": ceiling["gflops"], "threads": ceiling["threads"],
                    "what": ceiling["model"]} if ceiling else None,
        "macs_per_image": ceiling["macs_per_image"] if ceiling else None,
        "notes": notes,
    }


def profile(models: list[Path], batch: int, *, provider: str = "cpu", threads: int | None = None, runs: int = 300) -> dict:
    """onnxruntime's own per-node timings (its built-in profiler) for each model at one batch size:
    per node, the median kernel time over `runs` calls and its share of the summed medians."""
    import json
    import tempfile


    result = {"cpu": cpu_info(), "batch_size": batch, "runs": runs, "models": {}}
    x = np.random.default_rng(0).random((batch, 1, contract.IMAGE_SIZE, contract.IMAGE_SIZE), dtype=np.float32)
    for path in models:
        model = runtime.open_model(path, provider, threads, quiet=True)  # checks the file and the provider
        with tempfile.TemporaryDirectory() as tmp:
            opts = runtime.session_options(threads)
            opts.enable_profiling, opts.profile_file_prefix = True, str(Path(tmp, "profile"))
            session = ort.InferenceSession(str(path), opts, providers=model.session.get_providers())
            for _ in range(runs):
                session.run(None, {model.input_name: x})
            events = json.loads(Path(session.end_profiling()).read_text())
        nodes: dict[str, dict] = {}
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                node = nodes.setdefault(e["name"][: -len("_kernel_time")], {"op_type": e["args"].get("op_name", "?"), "us": []})
                node["us"].append(e["dur"])
        rows = [{"node": name, "op_type": n["op_type"], "calls": len(n["us"]), "median_us": float(np.median(n["us"]))}
                for name, n in nodes.items()]
        total = sum(r["median_us"] for r in rows) or 1.0
        for r in rows:
            r["share"] = r["median_us"] / total
        result["models"][str(path)] = {"providers": session.get_providers(), "nodes": rows, "sum_median_us": total}
    return result


def plot(report: dict, out: str | Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'edgemnist[plot]'") from None
    rows = report["rows"]
    backends = list(dict.fromkeys(r["backend"] for r in rows))  # unique per model (ort-int8:<stem> for a second one)
    batches = sorted({r["batch_size"] for r in rows})
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    width = 0.8 / len(backends)
    for k, name in enumerate(backends):
        vals = [next((r["images_per_s"] for r in rows if r["backend"] == name and r["batch_size"] == b), 0) for b in batches]
        ax.bar([i + k * width for i in range(len(batches))], vals, width, label=name)
    ax.set_xticks([i + width * (len(backends) - 1) / 2 for i in range(len(batches))], [f"batch {b}" for b in batches])
    ax.set_yscale("log")
    ax.set_ylabel("images/s (log)")
    ax.set_title(f"edgemnist bench — {report['cpu']['model']}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    with atomic.atomic_path(out) as tmp:
        fig.savefig(tmp, format=Path(out).suffix.lstrip(".") or "png")
    plt.close(fig)
