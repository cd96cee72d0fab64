"""Provider policy, `edgemnist eval`, `bench` smoke test, and the torch-free inference path."""

from __future__ import annotations

import json
import subprocess
import sys

import onnxruntime as ort
import pytest

from conftest import ROOT, run_cli
from edgemnist import UserError, runtime
from edgemnist.cpu import cpu_info
from edgemnist.settings import Thresholds

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
    proc = run_cli("bench", "--duration", "0.05", "--batch-sizes", "1,8", "--json", "--plot", str(tmp_path / "b.png"))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["cpu"] == json.loads(json.dumps(cpu_info())) and r["cpu"]["int8_kernels"]
    backends = {(row["backend"], row["batch_size"]) for row in r["rows"]}
    assert backends == {(b, n) for b in ("torch-fp32", "torch-fp32-folded", "ort-fp32", "ort-int8") for n in (1, 8)}
    for row in r["rows"]:
        assert {"backend", "provider", "batch_size", "p50_us", "p90_us", "p99_us", "images_per_s"} <= row.keys()
        assert 0 < row["p50_us"] <= row["p90_us"] <= row["p99_us"] and row["images_per_s"] > 0
    int8 = next(row for row in r["rows"] if row["backend"] == "ort-int8" and row["batch_size"] == 8)
    assert {"vs_torch", "int8_vs_fp32", "vs_ceiling"} <= int8.keys()
    assert r["ceiling"]["batch_size"] == 8 and r["ceiling"]["images_per_s"] > 0
    assert (tmp_path / "b.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-sizes", "0"], "--batch-sizes wants comma-separated positive integers"),
        (["--models", "pyproject.toml"], "is not a usable ONNX model"),
        (["--models", "nope.onnx"], "model not found"),
        (["--duration", "0"], "--duration must be positive"),
        (["--threads", "0"], "--threads must be at least 1"),
    ],
)
def test_bench_bad_input_exits_2(args, message):
    proc = run_cli("bench", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_bench_unknown_provider_exits_2():
    proc = run_cli("bench", "--provider", "tpu")
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


def _torch_free(args: list[str], block: bool) -> tuple[int, bool, bool]:
    code = (BLOCK_TORCH if block else "") + TORCH_CHECK.format(args=args)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    result = proc.stderr.strip().splitlines()[-1].split()
    assert result[0] == "RESULT", proc.stderr
    return int(result[1]), result[2] == "True", result[3] == "True"


@pytest.fixture(scope="module")
def digit_png(mnist, tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("digit") / "digit.png"
    Image.fromarray(mnist.test_images[0], mode="L").save(path)
    return str(path)


@pytest.mark.parametrize("block", [False, True], ids=["torch-installed", "torch-absent"])
def test_inference_path_never_imports_torch(digit_png, block):
    for args in (
        ["infer", digit_png, "--json"],
        ["eval", str(EXPORTED / "mlp.int8.onnx"), "--json"],
        ["bench", "--duration", "0.05", "--batch-sizes", "1", "--json", "--no-torch"],
    ):
        assert _torch_free(args, block) == (0, False, False), args


def test_bench_without_torch_installed_skips_the_baseline_and_says_so(tmp_path):
    code = BLOCK_TORCH + TORCH_CHECK.format(args=["bench", "--duration", "0.05", "--batch-sizes", "1", "--json"])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    report = json.loads(proc.stdout)
    assert {row["backend"] for row in report["rows"]} == {"ort-fp32", "ort-int8"}
    assert any("torch is not installed" in n for n in report["notes"])


def test_version_and_debug_flags():
    from edgemnist import __version__

    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == __version__
    proc = run_cli("--debug", "eval", "missing.onnx")
    assert proc.returncode != 0 and "Traceback" in proc.stderr  # --debug shows what the one-liner hides
