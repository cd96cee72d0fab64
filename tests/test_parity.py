"""The parity suite: exported models agree with PyTorch on all 10,000 real MNIST test images.

Run for the model trained in this session and for the committed reference models in exported/.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from edgemnist.cpu import cpu_info
from edgemnist.settings import NOT_SURE_BELOW, QuantSettings, Thresholds
from edgemnist.training import parity
from edgemnist.training import quantize as q
from edgemnist.training.temperature import fit_temperature, fold_temperature
from edgemnist.training.train import load_checkpoint

from conftest import cli

ROOT = Path(__file__).resolve().parents[1]
EXPORTED = ROOT / "exported"


def calibrated(checkpoint, mnist):
    """The checkpoint as `export` makes it: the temperature fitted on its held-out images folded in."""
    model, ckpt = load_checkpoint(checkpoint)
    return fold_temperature(model, ckpt["train_config"], mnist.train_images, mnist.train_labels)


@pytest.fixture(scope="session")
def reference_report(mnist):
    model, fitted = calibrated(EXPORTED / "mlp.pt", mnist)
    return parity.run(model, mnist.test_images, mnist.test_labels, EXPORTED / "mlp.onnx", EXPORTED / "mlp.int8.onnx") | {"calibration": fitted}


@pytest.fixture(params=["session", "reference"])
def case(request, exported, reference_report, trained):
    """(parity report, checkpoint path) for the session-trained model and for exported/."""
    if request.param == "session":
        return exported, trained[0]
    return reference_report, EXPORTED / "mlp.pt"


def test_fp32_agrees_with_pytorch_on_every_test_image(case):
    r, _ = case
    assert r["n"] == 10000
    assert r["fp32"]["agreement"] == 1.0 and r["fp32"]["disagreements"] == 0
    assert r["fp32"]["max_abs_dlogit"] <= Thresholds().fp32_max_abs_dlogit
    assert r["fp32"]["accuracy"] == r["torch"]["accuracy"]


def test_int8_keeps_accuracy_and_agreement(case):
    r, _ = case
    t = Thresholds()
    assert (r["torch"]["accuracy"] - r["int8"]["accuracy"]) * 100 <= t.int8_max_drop_pp
    assert r["int8"]["agreement"] >= t.int8_min_agreement


def test_int8_fused_kernels_equal_the_reference_semantics_on_this_cpu(case):
    """The gate's CPU check: this machine's fused integer kernels vs the QDQ reference semantics."""
    r, _ = case
    ref, t = r["int8"]["reference"], Thresholds()
    assert ref["agreement"] >= t.reference_min_agreement and ref["max_abs_dlogit"] <= t.reference_max_abs_dlogit
    assert r["int8"]["saturation"]["saturation_free"] and r["int8"]["saturation"]["worst_pair_sum"] <= 32767
    assert r["cpu"]["int8_kernels"] and r["onnxruntime"] == ort.__version__


def test_batch_axis_is_dynamic_batch1_equals_batch10000(case):
    r, _ = case
    assert r["fp32"]["batch1_max_diff"] <= Thresholds().batch_max_diff
    assert r["int8"]["batch1_max_diff"] <= Thresholds().batch_max_diff
    assert r["passed"] and r["failures"] == []


def test_files_are_self_contained_checked_and_carry_metadata(case):
    r, checkpoint = case
    for precision in ("fp32", "int8"):
        path = Path(r[precision]["path"])
        proto = onnx.load(path)
        onnx.checker.check_model(proto, full_check=True)
        assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
        assert sorted(p.name for p in path.parent.iterdir() if p.suffix not in (".onnx", ".pt", ".json")) == []
        (inp,), (out,) = proto.graph.input, proto.graph.output
        assert inp.name == "pixels" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
        assert isinstance(dims[0], str) and dims[1:] == [1, 28, 28]
        assert out.name == "logits"
        keys = [p.key for p in proto.metadata_props]
        assert len(keys) == len(set(keys)), "duplicate metadata keys"
        meta = {p.key: p.value for p in proto.metadata_props}
        assert json.loads(meta["edgemnist.input"]) == {  # the contract, written out: a change here is on purpose
            "name": "pixels", "layout": "NCHW", "shape": ["N", 1, 28, 28], "dtype": "float32",
            "range": [0.0, 1.0], "polarity": "light-on-dark",
        }
        assert json.loads(meta["edgemnist.labels"]) == [str(d) for d in range(10)]
        assert json.loads(meta["edgemnist.normalization"]) == {"mean": 0.1307, "std": 0.3081, "in_graph": True}
        assert meta["edgemnist.precision"] == precision
        assert meta["edgemnist.source_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
        assert float(meta["edgemnist.accuracy.fp32"]) == pytest.approx(r["fp32"]["accuracy"], abs=1e-6)
        assert float(meta["edgemnist.accuracy.int8"]) == pytest.approx(r["int8"]["accuracy"], abs=1e-6)
        assert meta["edgemnist.version"] and meta["edgemnist.producer"] == "edgemnist"
        assert json.loads(meta["edgemnist.gate"]) == {"passed": True, "failures": []}
        where = json.loads(meta["edgemnist.verified_on"])
        assert where["onnxruntime"] and where["cpu"] and where["int8_kernels"] and where["provider"] == "CPUExecutionProvider"
        if precision == "int8":
            q = json.loads(meta["edgemnist.quantization"])
            assert q["method"] == "static" and q["per_channel"] is False and q["calibration_data"] == "train"
            assert q["calibration_size"] == 1000 and q["calibration_method"] == "minmax"
            assert q["weight_bits"] == 7 and q["saturation_free"] is True and q["worst_pair_sum"] <= 32767
            assert float(meta["edgemnist.accuracy.int8_reference"]) == pytest.approx(r["int8"]["reference"]["accuracy"], abs=1e-6)
            assert any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
            last = next(n for n in proto.graph.node if proto.graph.output[0].name in n.output)
            assert last.op_type == "Gemm" and q["logits"] == "float32"  # the answer is not requantized to 8 bits


def test_uint8_input_twin_gives_the_int8_models_logits_bit_for_bit(exported, mnist, tmp_path):
    """`export --input uint8`: <stem>.int8.uint8.onnx takes uint8 pixels (camera frames, decoded
    images) and answers exactly as the int8 model does; its own contract in its metadata, the int8
    model's gate, the tools that run models take it, the page refuses it in one line."""
    from edgemnist import runtime
    from edgemnist.contract import UINT8_INPUT, images_to_pixels

    twin_row = exported["int8_uint8"]
    assert twin_row["max_abs_dlogit_vs_int8"] == 0.0 and twin_row["passed"] and exported["passed"]
    int8 = runtime.open_model(exported["int8"]["path"], "cpu", quiet=True)
    twin = runtime.open_model(twin_row["path"], "cpu", quiet=True)  # the graph digest and the gate are checked here
    assert twin.takes_uint8 and not int8.takes_uint8 and twin.precision == "int8"
    assert json.loads(twin.metadata["edgemnist.input"]) == UINT8_INPUT == {
        "name": "pixels", "layout": "NCHW", "shape": ["N", 1, 28, 28], "dtype": "uint8", "range": [0, 255], "polarity": "light-on-dark"}
    expected = int8.logits(images_to_pixels(mnist.test_images), batch_size=10000)
    assert np.array_equal(twin.logits(mnist.test_images[:, None], batch_size=10000), expected)  # uint8 straight in
    assert np.array_equal(twin.logits(images_to_pixels(mnist.test_images), batch_size=10000), expected)  # float pixels, quantized as the int8 model does
    import edgemnist

    api = edgemnist.load(twin_row["path"], provider="cpu")  # the Python API: uint8 as it is, and classify
    assert np.array_equal(api.logits(mnist.test_images), expected)
    assert [r.label for r in api.classify_batch(mnist.test_images[:50])] == list(expected[:50].argmax(1))
    rng = np.random.default_rng(0)  # and pixels off the 1/255 grid (the preprocessing's): at most one input step apart, same answers
    blurred = rng.random((2000, 1, 28, 28), dtype=np.float32) * images_to_pixels(mnist.test_images[:2000])
    assert (twin.logits(blurred).argmax(1) == int8.logits(blurred).argmax(1)).mean() >= 0.999
    assert len(twin.session.get_inputs()) == 1 and Path(twin_row["path"]).stat().st_size < Path(exported["int8"]["path"]).stat().st_size
    digit = tmp_path / "digit.png"
    Image.fromarray(mnist.test_images[0]).save(digit)
    answers = [json.loads(cli("infer", str(digit), "--model", path, "--json").stdout) for path in (exported["int8"]["path"], twin_row["path"])]
    assert answers[0] == answers[1] and answers[0]["label"] == mnist.test_labels[0]
    bench = cli("bench", "--models", twin_row["path"], "--no-torch", "--batch-sizes", "1", "--duration", "0.05", "--json")
    assert bench.returncode == 0 and {r["backend"] for r in json.loads(bench.stdout)["rows"]} >= {"ort-int8-uint8-input"}, bench.stderr
    page = cli("web", "build", str(tmp_path / "site"), "--model", twin_row["path"])
    assert page.returncode == 2 and "takes uint8 pixels and the page feeds float32 ones" in page.stderr.splitlines()[-1]
    with pytest.raises(ValueError, match="not quantized by a QuantizeLinear"):
        q.uint8_input(onnx.load(exported["fp32"]["path"]))


def test_probabilities_are_calibrated(case):
    """Expected calibration error (15 bins) on the 10,000 test images <= 0.5% for fp32 and int8, with
    the temperature fitted on held-out training images; the metadata says what was measured."""
    r, _ = case
    assert r["calibration"]["temperature"] < 1 and "held-out training images" in r["calibration"]["fitted_on"]
    assert r["torch"]["calibration"]["ece"] == pytest.approx(r["fp32"]["calibration"]["ece"], abs=1e-4)
    for precision in ("fp32", "int8"):
        assert r[precision]["calibration"]["bins"] == 15 and r[precision]["calibration"]["ece"] <= 0.005, precision
        if "path" in r[precision]:
            meta = {p.key: p.value for p in onnx.load(r[precision]["path"]).metadata_props}
            cal = json.loads(meta["edgemnist.calibration"])
            assert cal["temperature"] == pytest.approx(r["calibration"]["temperature"], rel=1e-9)
            assert cal["ece_test"] == pytest.approx(r[precision]["calibration"]["ece"], abs=1e-6)
            assert cal["ece_bins"] == 15 and cal["not_sure_below"] == NOT_SURE_BELOW


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    true = rng.normal(0, 3, (20000, 10))
    labels = np.array([rng.choice(10, p=np.exp(z - z.max()) / np.exp(z - z.max()).sum()) for z in true])
    assert fit_temperature(true * 2.5, labels) == pytest.approx(2.5, rel=0.03)
    assert fit_temperature(true, labels) == pytest.approx(1.0, rel=0.03)


def test_export_without_held_out_images_needs_no_temperature(trained, tmp_path):
    import torch

    ckpt = torch.load(trained[0], weights_only=True)
    ckpt["train_config"]["holdout"] = 0
    torch.save(ckpt, tmp_path / "all.pt")
    r = cli("export", str(tmp_path / "all.pt"), "--out", str(tmp_path / "all.onnx"), "--no-quantize")
    assert r.returncode == 2 and "--no-temperature" in r.stderr and not (tmp_path / "all.onnx").exists()
    r = cli("export", str(tmp_path / "all.pt"), "--out", str(tmp_path / "all.onnx"), "--no-quantize", "--no-temperature", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["calibration"] == {"temperature": 1.0, "fitted_on": None}


def test_reference_int8_figures(mnist):
    """What the committed int8 model gives here, measured now on all 10,000 test images: within 0.1 pp
    of the committed fp32 model and 99.9% the same answers, its fused kernels within the gate of its
    reference semantics, and under 30% of the fp32 file's size."""
    from edgemnist import runtime
    from edgemnist.contract import images_to_pixels

    pixels, labels = images_to_pixels(mnist.test_images), mnist.test_labels
    fp32 = runtime.open_model(EXPORTED / "mlp.onnx", "cpu", quiet=True).logits(pixels)
    int8 = runtime.open_model(EXPORTED / "mlp.int8.onnx", "cpu", quiet=True).logits(pixels)
    reference = runtime.open_model(EXPORTED / "mlp.int8.onnx", "cpu", quiet=True, reference=True).logits(pixels)
    drop_pp = ((fp32.argmax(1) == labels).mean() - (int8.argmax(1) == labels).mean()) * 100
    assert drop_pp <= 0.1 and (int8.argmax(1) == fp32.argmax(1)).mean() >= 0.999
    assert np.abs(int8 - reference).max() <= Thresholds().reference_max_abs_dlogit
    assert (EXPORTED / "mlp.int8.onnx").stat().st_size <= 0.30 * (EXPORTED / "mlp.onnx").stat().st_size


def test_committed_files_match_the_manifest_and_the_packaged_model():
    manifest = json.loads((EXPORTED / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        blob = (EXPORTED / name).read_bytes()
        assert len(blob) == entry["size_bytes"] and hashlib.sha256(blob).hexdigest() == entry["sha256"], name
    packaged = (ROOT / "edgemnist" / "pretrained" / "mlp.int8.onnx").read_bytes()
    assert hashlib.sha256(packaged).hexdigest() == manifest["files"]["mlp.int8.onnx"]["sha256"]


def test_manifest_accuracies_match_a_fresh_measurement(reference_report):
    """Only figures the format makes equal on every CPU are compared with the manifest: PyTorch, fp32,
    and the int8 reference semantics. This CPU's fused int8 kernels are held to the reference instead."""
    manifest = json.loads((EXPORTED / "manifest.json").read_text())
    for key in ("torch", "fp32"):
        assert manifest["accuracy"][key] == pytest.approx(reference_report[key]["accuracy"], abs=1e-9)
    ref = reference_report["int8"]["reference"]
    assert manifest["accuracy"]["int8_reference"] == pytest.approx(ref["accuracy"], abs=1e-9)
    assert ref["agreement"] >= Thresholds().reference_min_agreement


def _rows(**changes):
    """Made-up parity rows that pass every default threshold; `changes` = {"fp32.key": value, ...}."""
    fp32 = {"agreement": 1.0, "max_abs_dlogit": 1e-6, "batch1_max_diff": 0.0}
    int8 = {"accuracy": 0.9925, "agreement": 0.999, "batch1_max_diff": 0.0, "reference": {"agreement": 1.0, "max_abs_dlogit": 0.03}}
    for key, value in changes.items():
        *path, last = key.split(".")
        target = {"fp32": fp32, "int8": int8}[path[0]]
        for part in path[1:]:
            target = target[part]
        target[last] = value
    return fp32, int8


@pytest.mark.parametrize(
    "change, message",
    [
        ({}, None),
        ({"fp32.agreement": 0.9999}, "fp32 top-1 agreement"),
        ({"fp32.max_abs_dlogit": 2e-4}, "fp32 max |Δlogit|"),
        ({"fp32.batch1_max_diff": 1e-4}, "fp32 batch-1 vs batch-N"),
        ({"int8.accuracy": 0.9890}, "int8 accuracy drop 0.38 pp > 0.3 pp"),
        ({"int8.agreement": 0.99}, "int8 top-1 agreement 99.00% < 99.50%"),
        ({"int8.batch1_max_diff": 1e-3}, "int8 batch-1 vs batch-N"),
        ({"int8.reference.agreement": 0.998}, "int8 fused kernels vs reference semantics: top-1 agreement 99.80% < 99.90%"),
        ({"int8.reference.max_abs_dlogit": 2.83}, "int8 fused kernels vs reference semantics: max |Δlogit| 2.83 > 0.1"),
    ],
)
def test_gate_names_each_failed_check(change, message):
    fp32, int8 = _rows(**change)
    failures = parity.gate(0.9928, fp32, int8, Thresholds())
    assert failures == ([] if message is None else [next(f for f in failures if message in f)]), failures


def test_gate_edges_and_options():
    t = Thresholds()
    fp32, int8 = _rows(**{"fp32.max_abs_dlogit": t.fp32_max_abs_dlogit, "int8.reference.max_abs_dlogit": t.reference_max_abs_dlogit,
                          "int8.reference.agreement": t.reference_min_agreement, "int8.agreement": t.int8_min_agreement})
    assert parity.gate(0.9928, fp32, int8, t) == []  # a value at its limit passes
    fp32, int8 = _rows(**{"int8.batch1_max_diff": 0.5})
    assert parity.gate(0.9928, fp32, int8, t, int8_dynamic=True) == []  # dynamic scales differ by batch, by design
    assert parity.gate(0.9928, fp32, None, t) == []  # no int8 model: no int8 checks
    fp32, int8 = _rows(**{"int8.reference.max_abs_dlogit": 0.5})
    assert parity.gate(0.9928, fp32, int8, Thresholds(reference_max_abs_dlogit=1.0)) == []


def test_saturation_check_by_hand():
    """u8 activations up to 255 times the two largest same-sign weights of one output channel."""
    w = np.array([[64, 64, -3], [-64, -64, 1]], np.int8)  # Gemm transB layout: [out, K]
    assert q.worst_pair_sum(w, k_axis=1) == 255 * 128
    assert q.worst_pair_sum(np.array([[127, 1], [2, -127]], np.int8), k_axis=1) == 255 * 128
    assert q.worst_pair_sum(np.array([[127, 1], [2, -127]], np.int8), k_axis=0) == 255 * 129
    assert q.worst_pair_sum(np.array([[127, 127]], np.int8), k_axis=None) == 64770


def test_saturation_free_format_is_proven_from_the_weights(exported, full_range):
    for path in (exported["int8"]["path"], EXPORTED / "mlp.int8.onnx", ROOT / "edgemnist/pretrained/mlp.int8.onnx"):
        report = q.saturation_report(onnx.load(path))
        assert report["int8_weight_tensors"] == 5 and report["saturation_free"], (path, report)
    old = q.saturation_report(onnx.load(full_range["int8"]["path"]))
    assert not old["saturation_free"] and old["worst_pair_sum"] > 32767


def test_gate_on_this_cpu_decides_the_full_range_model_by_its_kernels(full_range):
    """On x86 without VNNI the old format's fused kernels drift from its reference and the gate fails
    naming only the int8 file; where the kernels are exact (VNNI, AMX, ARM64) it passes."""
    ref = full_range["int8"]["reference"]
    if cpu_info()["u8s8_saturates"]:
        assert not full_range["passed"] and full_range["failing"] == [full_range["int8"]["path"]]
        assert any("fused kernels vs reference semantics" in f for f in full_range["failures"])
        assert ref["max_abs_dlogit"] > Thresholds().reference_max_abs_dlogit
    else:
        assert full_range["passed"], full_range["failures"]


@pytest.mark.parametrize("method, per_channel", [("dynamic", True), ("static", True)])
def test_other_quantization_settings_pass_the_gate(trained, tmp_path, method, per_channel):
    from edgemnist.training.export import export_checkpoint

    settings = QuantSettings(method=method, per_channel=per_channel)
    r = export_checkpoint(trained[0], tmp_path / "q.onnx", settings=settings)
    assert r["passed"], r["failures"]
    t = Thresholds()
    assert r["int8"]["agreement"] >= t.int8_min_agreement and r["torch"]["accuracy"] - r["int8"]["accuracy"] <= t.int8_max_drop_pp / 100
    assert r["int8"]["saturation"]["saturation_free"]
    meta = {p.key: p.value for p in onnx.load(tmp_path / "q.int8.onnx").metadata_props}
    quant = json.loads(meta["edgemnist.quantization"])
    assert quant["method"] == method and quant["per_channel"] is per_channel and quant["weight_bits"] == 7


@pytest.mark.cuda
@pytest.mark.skipif("CUDAExecutionProvider" not in ort.get_available_providers(), reason="needs CUDAExecutionProvider")
def test_parity_on_cuda_execution_provider(trained, mnist):
    model, _ = calibrated(trained[0], mnist)
    exported_dir = trained[0].parent
    r = parity.run(model, mnist.test_images, mnist.test_labels, exported_dir / "mlp.onnx", exported_dir / "mlp.int8.onnx",
                   parity.Thresholds(fp32_max_abs_dlogit=1e-3), provider="cuda")
    assert r["fp32"]["providers"][0] == "CUDAExecutionProvider"
    assert r["fp32"]["agreement"] >= 0.9999 and r["fp32"]["max_abs_dlogit"] <= 1e-3
    assert (r["torch"]["accuracy"] - r["int8"]["accuracy"]) * 100 <= 0.3 and r["int8"]["agreement"] >= 0.995
