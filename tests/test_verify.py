"""`edgemnist verify`: the model on this device's kernels vs its recorded accuracy and its reference
semantics. Torch-free; every check here holds on AVX2-only and on VNNI/AMX machines alike."""

from __future__ import annotations

import json

import onnx
import pytest
from onnx import TensorProto, helper

from edgemnist.cpu import cpu_info, int8_kernels
from edgemnist.settings import Thresholds

from conftest import ROOT, cli, run_cli

EXPORTED = ROOT / "exported"


@pytest.mark.parametrize("name", ["mlp.int8.onnx", "mlp.onnx"])
def test_reference_models_pass_on_this_cpu(name):
    proc = run_cli("verify", str(EXPORTED / name), "--provider", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    manifest = json.loads((EXPORTED / "manifest.json").read_text())
    precision = "int8" if "int8" in name else "fp32"
    assert r["passed"] and r["failures"] == [] and r["precision"] == precision and r["n"] == 10000
    assert r["recorded_accuracy"] == pytest.approx(manifest["accuracy"][precision], abs=1e-6)
    assert r["accuracy_drop_pp"] <= Thresholds().verify_max_drop_pp
    assert r["agreement_with_reference"] >= Thresholds().reference_min_agreement
    assert r["max_abs_dlogit_vs_reference"] <= Thresholds().reference_max_abs_dlogit
    assert r["cpu"] == json.loads(json.dumps(cpu_info())) and r["providers"] == ["CPUExecutionProvider"]
    assert r["recorded_on"]["cpu"] == manifest["verified_on"]["cpu"]
    assert r["saturation_free"] is (True if precision == "int8" else None)


def test_human_verdict_names_cpu_provider_and_figures():
    proc = cli("verify", str(EXPORTED / "mlp.int8.onnx"))
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert cpu_info()["model"] in err and f"int8 kernels: {cpu_info()['int8_kernels']}" in err
    assert "CPUExecutionProvider" in err and "recorded at export" in err and "reference semantics" in err
    assert err.strip().splitlines()[-1].startswith("PASSED")


def test_full_range_model_is_caught_where_the_kernels_saturate(full_range):
    """The pre-portable int8 format on an x86 CPU without VNNI: verify says it drifted (exit 1)."""
    if not cpu_info()["u8s8_saturates"]:
        pytest.skip(f"this CPU's int8 kernels ({cpu_info()['int8_kernels']}) compute exact sums: nothing saturates here")
    proc = run_cli("verify", full_range["int8"]["path"], "--provider", "cpu", "--json", "--allow-failed-gate")  # export marked it
    assert proc.returncode == 1, proc.stderr
    r = json.loads(proc.stdout)
    assert not r["passed"] and r["saturation_free"] is False
    assert r["max_abs_dlogit_vs_reference"] > Thresholds().reference_max_abs_dlogit
    assert any("fused kernels vs reference semantics" in f for f in r["failures"])


def _drifted(tmp_path, how: str):
    """The committed int8 model made to drift on any CPU: its recorded accuracy 0.3 pp above what it
    reaches, or its weights for 3 and 5 swapped (a broken re-export: the digest made anew, so only
    the measurement can tell)."""
    from onnx import numpy_helper

    from edgemnist import integrity

    proto = onnx.load(EXPORTED / "mlp.int8.onnx")
    meta = {p.key: p for p in proto.metadata_props}
    if how == "recorded accuracy":
        meta["edgemnist.accuracy.int8"].value = repr(float(meta["edgemnist.accuracy.int8"].value) + 0.003)
    else:
        init = next(i for i in proto.graph.initializer if i.name == "layers.8.weight_quantized")
        w = numpy_helper.to_array(init).copy()
        w[[3, 5]] = w[[5, 3]]
        init.CopyFrom(numpy_helper.from_array(w, init.name))
        meta[integrity.KEY].value = integrity.graph_sha256(proto.SerializeToString())
    path = tmp_path / f"{how.replace(' ', '_')}.onnx"
    onnx.save(proto, path)
    return path


@pytest.mark.parametrize("how", ["recorded accuracy", "weights"])
def test_verify_catches_a_drifting_model_on_every_cpu(tmp_path, how):
    """Drift that no CPU's kernels can hide: verify fails it (exit 1) against the accuracy recorded at
    export, here whatever this CPU is (AVX2, VNNI, AMX, ARM64)."""
    proc = cli("verify", str(_drifted(tmp_path, how)), "--provider", "cpu", "--json")
    assert proc.returncode == 1, proc.stderr
    r = json.loads(proc.stdout)
    assert r["passed"] is False and r["accuracy_drop_pp"] > Thresholds().verify_max_drop_pp
    assert any("pp below the" in f and "recorded at export" in f for f in r["failures"]), r["failures"]
    if how == "recorded accuracy":  # the kernels themselves are fine: only the accuracy check fails
        assert len(r["failures"]) == 1 and r["agreement_with_reference"] >= Thresholds().reference_min_agreement


def test_model_without_edgemnist_metadata_is_still_verified_on_reference(tmp_path):
    proto = onnx.load(EXPORTED / "mlp.int8.onnx")
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, bare)
    proc = cli("verify", str(bare), "--provider", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["precision"] is None and r["recorded_accuracy"] is None and r["accuracy"] > 0.99
    assert r["agreement_with_reference"] >= Thresholds().reference_min_agreement


def _contract_breaking(path):
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "flat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 784])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


@pytest.mark.parametrize(
    "make, extra, message",
    [
        (lambda d: d / "missing.onnx", [], "not found"),
        (lambda d: (d / "notes.onnx").write_text("not a model") and d / "notes.onnx", [], "is not a usable ONNX model"),
        (lambda d: _contract_breaking(d / "flat.onnx"), [], "expected float32 [N, 1, 28, 28]"),
        (lambda d: EXPORTED / "mlp.int8.onnx", ["--provider", "cuda"], "CUDAExecutionProvider"),
        # a NaN gate passed every model, a negative drop or an agreement above 1 failed every one
        (lambda d: EXPORTED / "mlp.int8.onnx", ["--max-drop", "nan"], "--max-drop must be a number from 0 to 100, got nan"),
        (lambda d: EXPORTED / "mlp.int8.onnx", ["--max-drop", "-5"], "--max-drop must be a number from 0 to 100, got -5"),
        (lambda d: EXPORTED / "mlp.int8.onnx", ["--min-reference-agreement", "2"], "--min-reference-agreement must be a number from 0 to 1"),
    ],
    ids=["missing", "not-onnx", "contract", "cuda", "nan-gate", "negative-drop", "agreement-over-1"],
)
def test_bad_input_is_one_line_exit_2(tmp_path, make, extra, message):
    if "cuda" in extra and "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers():
        pytest.skip("CUDA is available here")
    proc = cli("verify", str(make(tmp_path)), *extra)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_mnist_unobtainable_exits_1(tmp_path):
    bad = tmp_path / "notmnist"
    bad.mkdir()
    proc = run_cli("verify", str(EXPORTED / "mlp.int8.onnx"), "--provider", "cpu", env={"EDGEMNIST_DATA": str(bad)})
    assert proc.returncode == 1 and "MNIST" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "arch, flags, family, saturates",
    [
        ("x86_64", {"avx2", "fma"}, "avx2", True),
        ("x86_64", {"avx2", "avx512f", "avx512bw"}, "avx512bw", True),
        ("x86_64", {"avx2", "avx512bw", "avx512_vnni"}, "avx512-vnni", False),
        ("x86_64", {"avx2", "avx_vnni"}, "avx-vnni", False),
        ("x86_64", {"avx2", "avx512_vnni", "amx_int8", "amx_tile"}, "amx", False),
        ("aarch64", {"asimd", "asimddp", "i8mm"}, "arm64-i8mm", False),
        ("aarch64", {"asimd"}, "arm64-neon", False),
    ],
)
def test_int8_kernel_family_from_cpu_flags(arch, flags, family, saturates):
    from edgemnist.cpu import SATURATING_FAMILIES

    assert int8_kernels(arch, flags) == family
    assert (family in SATURATING_FAMILIES) is saturates
