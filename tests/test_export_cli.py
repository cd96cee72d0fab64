"""`edgemnist export` from the command line: the gate's exit code and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from conftest import cli, run_cli


def test_export_cli_json_and_a_failing_gate_exits_1_naming_the_check(trained, tmp_path):
    out = tmp_path / "strict.onnx"
    (tmp_path / "strict.onnx.sig").write_text("the signature of an older strict.onnx")
    proc = run_cli("export", str(trained[0]), "--out", str(out), "--max-dlogit", "1e-12", "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["passed"] is False and any("max |Δlogit|" in f for f in report["failures"])
    assert "parity gate failed" in proc.stderr and "fp32 max |Δlogit|" in proc.stderr
    assert report["failing"] == [str(out)] and proc.stderr.rstrip().endswith(f"failing: {out})")  # int8 passed
    assert out.is_file() and (tmp_path / "strict.int8.onnx").is_file()  # both kept for inspection
    assert report["removed"] == [str(tmp_path / "strict.onnx.sig")]  # it would no longer verify
    assert "Traceback" not in proc.stderr
    # ... and marked: the failed one is refused by what runs models, unless asked for by name
    image = tmp_path / "d.png"
    Image.new("L", (60, 60), 255).save(image)  # never read: the model is refused first
    for args in (["infer", str(image), "--model", str(out)], ["eval", str(out)], ["verify", str(out)],
                 ["bench", "--models", str(out), "--no-torch", "--duration", "0.05"], ["web", "build", str(tmp_path / "site"), "--model", str(out)]):
        refused = cli(*args)
        assert refused.returncode == 2 and "failed its parity gate at export (fp32 max |Δlogit|" in refused.stderr, (args, refused.stderr)
        assert "--allow-failed-gate" in refused.stderr.strip().splitlines()[-1]
    assert cli("eval", str(out), "--allow-failed-gate", "--json").returncode == 0
    assert cli("eval", str(tmp_path / "strict.int8.onnx"), "--json").returncode == 0  # the int8 model passed its checks


def test_export_without_quantize_leaves_no_stale_int8_model_behind_and_signs(trained, tmp_path, keys):
    """infer prefers <stem>.int8.onnx: an older one beside a new fp32 model would be run instead of it.
    --sign-key: the model that passed its gate gets <model>.sig, which `verify --public-key` checks."""
    out = tmp_path / "mlp.onnx"
    for name in ("mlp.int8.onnx", "mlp.int8.uint8.onnx", "mlp.int8.uint8.onnx.sig"):
        (tmp_path / name).write_bytes(b"from an older export")
    proc = run_cli("export", str(trained[0]), "--out", str(out), "--no-quantize", "--sign-key", str(keys["private"]), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["removed"] == [str(tmp_path / name) for name in ("mlp.int8.onnx", "mlp.int8.uint8.onnx", "mlp.int8.uint8.onnx.sig")]
    assert report["fp32"]["signature"] == str(tmp_path / "mlp.onnx.sig")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.onnx", "mlp.onnx.sig"]
    verified = cli("verify", str(out), "--public-key", str(keys["public"]), "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["signature"]["verified"] is True, verified.stderr


def _assert_clean_failure(proc, tmp_path, message):
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [proc.stderr.strip().splitlines()[-1]]
    assert not list(tmp_path.glob("**/*.onnx")) and not list(tmp_path.glob("**/*.tmp"))


def test_missing_checkpoint(tmp_path):
    _assert_clean_failure(cli("export", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "m.onnx")), tmp_path, "not found")


def test_truncated_checkpoint(trained, tmp_path):
    bad = tmp_path / "trunc.pt"
    bad.write_bytes(trained[0].read_bytes()[:5000])
    _assert_clean_failure(cli("export", str(bad), "--out", str(tmp_path / "m.onnx")), tmp_path, "not a readable edgemnist checkpoint")


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    _assert_clean_failure(cli("export", str(bad), "--out", str(tmp_path / "m.onnx")), tmp_path, "not a readable edgemnist checkpoint")


def test_config_that_does_not_match_the_weights(trained, tmp_path):
    ckpt = torch.load(trained[0], weights_only=True)
    ckpt["config"]["hidden"] = [512, 256, 128, 32]
    bad = tmp_path / "mismatch.pt"
    torch.save(ckpt, bad)
    _assert_clean_failure(cli("export", str(bad), "--out", str(tmp_path / "m.onnx")), tmp_path, "config does not match the weights")


@pytest.mark.parametrize("opset", ["7", "99"])
def test_opset_the_exporter_cannot_produce(trained, tmp_path, opset):
    _assert_clean_failure(cli("export", str(trained[0]), "--opset", opset, "--out", str(tmp_path / "m.onnx")), tmp_path, f"--opset {opset}")


def test_unwritable_out(trained, tmp_path):
    _assert_clean_failure(cli("export", str(trained[0]), "--out", "/proc/edgemnist/m.onnx"), tmp_path, "cannot create directory")
    # a directory that exists but takes no files (root passes os.access there): was exit 3 after the export
    _assert_clean_failure(cli("export", str(trained[0]), "--out", "/proc/m.onnx"), tmp_path, "cannot write to /proc: ")


def test_input_uint8_needs_the_static_int8_model(trained, tmp_path):
    for flag in ("--no-quantize", "--method=dynamic"):
        _assert_clean_failure(cli("export", str(trained[0]), "--input", "uint8", flag, "--out", str(tmp_path / "m.onnx")), tmp_path,
                              "--input uint8 makes a twin of the static int8 model")
