"""Provider policy, `edgemnist eval`, `bench` smoke test, and the torch-free inference path."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import onnxruntime as ort
import pytest

from edgemnist import UserError, runtime
from edgemnist.cpu import cpu_info
from edgemnist.settings import MLPConfig, Thresholds

from conftest import ROOT, cli, read_line, run_cli

EXPORTED = ROOT / "exported"
CPU, CUDA = runtime.CPU, runtime.CUDA
HAS_CUDA = CUDA in ort.get_available_providers()


@pytest.mark.parametrize(
    "requested, available, expected",
    [
        ("cpu", [CUDA, CPU], [CPU]),
        ("cpu", [CPU], [CPU]),
        ("auto", [CPU], [CPU]),
        ("auto", [CUDA, CPU], [CUDA, CPU]),
        ("cuda", [CUDA, CPU], [CUDA, CPU]),
    ],
)
def test_provider_selection(requested, available, expected):
    assert runtime.resolve_providers(requested, available) == expected


def test_cuda_requested_but_not_available_is_an_environment_error():
    with pytest.raises(UserError, match="no CUDAExecutionProvider") as e:
        runtime.resolve_providers("cuda", [CPU])
    assert e.value.exit_code == 2
    with pytest.raises(UserError, match="--provider must be one of"):
        runtime.resolve_providers("tpu", [CPU])


def test_silent_fallback_to_cpu_is_refused_for_cuda_and_reported_for_auto(capsys):
    with pytest.raises(UserError, match="fell back to CPU") as e:
        runtime.check_granted("cuda", [CUDA, CPU], [CPU])
    assert e.value.exit_code == 2
    runtime.check_granted("auto", [CUDA, CPU], [CPU])
    assert "provider: CPUExecutionProvider (auto)" in capsys.readouterr().err


@pytest.mark.skipif(HAS_CUDA, reason="CUDA is available here")
def test_eval_provider_cuda_without_cuda_exits_2():
    proc = run_cli("eval", str(EXPORTED / "mlp.onnx"), "--provider", "cuda")
    assert proc.returncode == 2 and "CUDAExecutionProvider" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDAExecutionProvider")
def test_eval_on_cuda_reports_the_cuda_provider():
    proc = run_cli("eval", str(EXPORTED / "mlp.onnx"), "--provider", "cuda", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["providers"][0] == CUDA


def test_eval_json_of_the_reference_models_matches_the_manifest(tmp_path):
    manifest = json.loads((EXPORTED / "manifest.json").read_text())
    for name, key in [("mlp.int8.onnx", "int8"), ("mlp.onnx", "fp32"), ("mlp.pt", "torch")]:
        plot = tmp_path / f"{name}.png"
        proc = run_cli("eval", str(EXPORTED / name), "--provider", "cpu", "--json", "--plot", str(plot))
        assert proc.returncode == 0, proc.stderr
        r = json.loads(proc.stdout)
        if key == "int8":  # this CPU's kernels: held to the reference semantics within verify's limit
            assert abs(r["accuracy"] - manifest["accuracy"]["int8_reference"]) * 100 <= Thresholds().verify_max_drop_pp
        else:
            assert r["accuracy"] == pytest.approx(manifest["accuracy"][key], abs=1e-9)
        assert r["n"] == 10000
        assert len(r["per_class"]) == 10 and sum(map(sum, r["confusion"])) == 10000
        assert [sum(row) for row in r["confusion"]] == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        assert r["providers"] == ([CPU] if key != "torch" else ["torch-cpu"])
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_smoke_report_shape(tmp_path):
    proc = cli("bench", "--duration", "0.05", "--batch-sizes", "1,8", "--json", "--plot", str(tmp_path / "b.png"))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["cpu"] == json.loads(json.dumps(cpu_info()))
    backends = {(row["backend"], row["batch_size"]) for row in r["rows"]}
    assert backends == {(b, n) for b in ("torch-fp32", "torch-fp32-folded", "ort-fp32", "ort-int8") for n in (1, 8)}
    for row in r["rows"]:
        assert 0 < row["p50_us"] <= row["p90_us"] <= row["p99_us"], row
        # each call timed over its whole --duration: the calls' own times fill most of it (the loop's
        # bookkeeping between two calls is not timed)
        assert row["calls"] * row["mean_us"] / 1e6 >= 0.05 * 0.5, row
        assert row["images_per_s"] == pytest.approx(row["batch_size"] * 1e6 / row["mean_us"])
        assert row["threads"] in (1, runtime.default_threads())
    for n in (1, 8):
        by = {row["backend"]: row for row in r["rows"] if row["batch_size"] == n}
        for name in ("ort-fp32", "ort-int8"):  # the ratios are those of the rows beside them, same batch
            assert by[name]["vs_torch"] == pytest.approx(by[name]["images_per_s"] / by["torch-fp32"]["images_per_s"])
        assert by["ort-int8"]["int8_vs_fp32"] == pytest.approx(by["ort-int8"]["images_per_s"] / by["ort-fp32"]["images_per_s"])
    int8 = next(row for row in r["rows"] if row["backend"] == "ort-int8" and row["batch_size"] == 8)
    assert "vs_ceiling" in int8 and int8["fp32_baseline"].endswith("mlp.onnx")
    assert r["ceiling"]["batch_size"] == 8 and r["ceiling"]["what"] == "plain MatMul chain 784-512-256-128-64-10"
    assert r["macs_per_image"] == MLPConfig().macs
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_reads_shapes_from_each_model_and_names_rows_by_model(trained, tmp_path):
    """A model of another width gets its own multiply-adds; two int8 models get two names."""
    from edgemnist.settings import QuantSettings, TrainConfig
    from edgemnist.training.export import export_checkpoint
    from edgemnist.training.train import save_checkpoint, train

    small, _ = train(MLPConfig(hidden=(32,)), TrainConfig(epochs=1, batch_size=512, variants=0, fragments=0), device="cpu")  # any model
    save_checkpoint(tmp_path / "small.pt", small, TrainConfig(epochs=1), {})
    export_checkpoint(tmp_path / "small.pt", tmp_path / "small.onnx", settings=QuantSettings(calibration_size=100))
    models = [tmp_path / "small.onnx", tmp_path / "small.int8.onnx", EXPORTED / "mlp.int8.onnx"]
    proc = cli("bench", "--duration", "0.05", "--batch-sizes", "4", "--no-torch", "--json", "--models", ",".join(map(str, models)))
    assert proc.returncode == 0, proc.stderr
    rows = {row["backend"]: row for row in json.loads(proc.stdout)["rows"]}
    assert set(rows) == {"ort-fp32", "ort-int8", "ort-int8:mlp.int8"}
    assert rows["ort-int8"]["macs_per_image"] == 784 * 32 + 32 * 10
    assert rows["ort-int8:mlp.int8"]["macs_per_image"] == MLPConfig().macs
    assert rows["ort-int8"]["model"] == str(models[1]) and rows["ort-int8:mlp.int8"]["model"] == str(models[2])
    # the ceiling has the first model's shapes: only rows of those shapes are compared with it
    assert "vs_ceiling" in rows["ort-int8"] and "vs_ceiling" not in rows["ort-int8:mlp.int8"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-sizes", "0"], "--batch-sizes wants comma-separated integers from 1 to 65,536"),
        (["--batch-sizes", "1,100000000"], "--batch-sizes wants comma-separated integers from 1 to 65,536"),  # was exit 3: torch's allocation
        (["--models", "pyproject.toml"], "is not a usable ONNX model"),
        (["--models", "nope.onnx"], "model not found"),
        (["--duration", "0"], "--duration must be positive"),
        (["--threads", "0"], "--threads must be from 1 to 256, got 0"),
        (["--threads", "100000"], "--threads must be from 1 to 256, got 100000"),  # onnxruntime hung starting them
    ],
)
def test_bench_bad_input_exits_2(args, message):
    proc = cli("bench", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_bench_unknown_provider_exits_2():
    proc = cli("bench", "--provider", "tpu")
    assert proc.returncode == 2 and "tpu" in proc.stderr


TORCH_CHECK = """
import sys
sys.argv = ["edgemnist", *{args!r}]
from edgemnist.cli import main
try:
    main()
except SystemExit as e:
    code = e.code or 0
else:
    code = 0
loaded = lambda name: sys.modules.get(name) is not None
print("\\nRESULT", code, loaded("torch"), loaded("torchvision"), file=sys.stderr)
"""

BLOCK_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['torchvision'] = None\n"


def _torch_free(args: list[str], block: bool, report: list | None = None) -> tuple[int, bool, bool]:
    """(exit code, torch imported, torchvision imported); `report` receives the command's JSON."""
    code = (BLOCK_TORCH if block else "") + TORCH_CHECK.format(args=args)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    result = proc.stderr.strip().splitlines()[-1].split()
    assert result[0] == "RESULT", proc.stderr
    if report is not None:
        report.append(json.loads(proc.stdout))
    return int(result[1]), result[2] == "True", result[3] == "True"


@pytest.fixture(scope="module")
def digit_png(mnist, tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("digit") / "digit.png"
    Image.fromarray(mnist.test_images[0], mode="L").save(path)
    return str(path)


INFERENCE_COMMANDS = [
    ["infer", "{digit}", "--json"],
    ["eval", str(EXPORTED / "mlp.int8.onnx"), "--json"],
    ["verify", str(EXPORTED / "mlp.int8.onnx"), "--json"],
    ["bench", "--duration", "0.05", "--batch-sizes", "1", "--json", "--no-torch"],
]


def test_inference_path_never_imports_torch(digit_png):
    """torch installed: the inference commands succeed and torch/torchvision never get imported."""
    for args in INFERENCE_COMMANDS:
        args = [a.format(digit=digit_png) for a in args]
        assert _torch_free(args, block=False) == (0, False, False), args


def test_inference_path_runs_where_torch_cannot_be_imported(digit_png, mnist):
    """torch made unimportable: the same commands still do their work, with the answers they give with
    torch installed (the import flags say nothing here)."""
    reports: list = []
    for args in INFERENCE_COMMANDS:
        args = [a.format(digit=digit_png) for a in args]
        assert _torch_free(args, block=True, report=reports)[0] == 0, args
    infer, ev, verify, bench = reports
    assert infer["label"] == int(mnist.test_labels[0]) and infer["sure"]
    int8 = runtime.open_model(EXPORTED / "mlp.int8.onnx", "cpu", quiet=True)
    assert ev["n"] == 10_000 and ev["accuracy"] == pytest.approx(int8.recorded_accuracy("int8"), abs=0.002)
    assert verify["passed"] is True and verify["model"].endswith("mlp.int8.onnx")
    assert {row["backend"] for row in bench["rows"]} == {"ort-fp32", "ort-int8"}


def test_bench_without_torch_installed_skips_the_baseline_and_says_so(tmp_path):
    code = BLOCK_TORCH + TORCH_CHECK.format(args=["bench", "--duration", "0.05", "--batch-sizes", "1", "--json"])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    report = json.loads(proc.stdout)
    assert {row["backend"] for row in report["rows"]} == {"ort-fp32", "ort-int8"}
    assert any("torch is not installed" in n for n in report["notes"])


def test_unexpected_error_is_an_internal_error_exit_3(monkeypatch):
    from edgemnist import verify

    def boom(*args, **kwargs):
        raise KeyError("")  # an empty message must still give one line

    monkeypatch.setattr(verify, "verify", boom)
    proc = cli("verify", str(EXPORTED / "mlp.int8.onnx"))
    assert proc.returncode == 3 and proc.stderr.strip() == "error: internal error, KeyError: '' (a bug in edgemnist; --debug shows the traceback)"


def test_ctrl_c_exits_130_whatever_the_typer_version():
    # a runner may start us with SIGINT ignored (background job), which a child would inherit: reset it
    proc = subprocess.Popen([sys.executable, "-m", "edgemnist", "bench", "--duration", "60", "--no-torch"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        started = read_line(proc.stderr, 60)  # bench names its model before it measures anything
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert started.startswith("model: ") and proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted", err


def test_version_and_debug_flags():
    from edgemnist import __version__

    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == __version__
    plain = run_cli("eval", "missing.onnx")
    assert (plain.returncode, plain.stderr) == (2, "error: model missing.onnx not found\n")
    proc = run_cli("--debug", "eval", "missing.onnx")  # --debug shows what the one-liner hides: where it was raised
    assert proc.returncode == 1 and proc.stderr.startswith("Traceback (most recent call last):"), proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "edgemnist.UserError: model missing.onnx not found"
    assert 'edgemnist/cli.py", line' in proc.stderr


def test_bench_profile_lists_every_node_of_each_model():
    proc = cli("bench", "--profile", "--batch-sizes", "4", "--json", "--models", str(EXPORTED / "mlp.int8.onnx"))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    (m,) = r["models"].values()
    ops = [n["op_type"] for n in m["nodes"]]
    assert ops.count("QGemm") == 5 and "QuantizeLinear" in ops  # the fused int8 graph, as the profiler saw it
    assert all(n["calls"] == r["runs"] for n in m["nodes"])
    assert sum(n["share"] for n in m["nodes"]) == pytest.approx(1.0)
    proc = cli("bench", "--profile", "--batch-sizes", "1,8")
    assert proc.returncode == 2 and "--profile takes one batch size" in proc.stderr
