"""`edgemnist train`: the default recipe's accuracy on the real test set, the checkpoint contract,
determinism, and bad input."""

from __future__ import annotations

import json
import os

import pytest
import torch

from edgemnist import UserError
from edgemnist.settings import MLPConfig, TrainConfig
from edgemnist.training.model import MLP, fold
from edgemnist.training.train import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint, train

from conftest import cli, run_cli


def test_default_recipe_reaches_99_percent_on_the_real_test_set(trained):
    _, metrics = trained
    assert metrics["test_accuracy"] >= 0.990
    assert metrics["epochs"] == 18 and metrics["device"] == "cpu"


def test_checkpoint_carries_config_normalization_metrics_and_loads_weights_only(trained):
    path, metrics = trained
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["format"] == CHECKPOINT_FORMAT
    assert ckpt["config"]["hidden"] == [512, 256, 128, 64]
    assert (ckpt["config"]["mean"], ckpt["config"]["std"]) == (0.1307, 0.3081)
    assert ckpt["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert ckpt["train_config"]["seed"] == 0 and set(ckpt["versions"]) == {"torch", "edgemnist"}
    model, _ = load_checkpoint(path)
    assert model.config == MLPConfig()


def test_folding_preserves_the_function(trained, mnist):
    model, _ = load_checkpoint(trained[0])
    x = torch.tensor(mnist.test_images[:500]).float().div(255).unsqueeze(1)
    with torch.no_grad():
        assert torch.allclose(model(x), fold(model)(x), atol=1e-4)


def test_same_seed_same_weights():
    cfg = TrainConfig(epochs=1, batch_size=512, seed=7)
    a, _ = train(MLPConfig(hidden=(32,)), cfg, device="cpu")
    b, _ = train(MLPConfig(hidden=(32,)), cfg, device="cpu")
    c, _ = train(MLPConfig(hidden=(32,)), TrainConfig(epochs=1, batch_size=512, seed=8), device="cpu")
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_checkpoint_never_runs_code(tmp_path):
    path, marker = tmp_path / "evil.pt", tmp_path / "pwned"
    torch.save({"format": CHECKPOINT_FORMAT, "payload": _Evil(marker)}, path)
    with pytest.raises(UserError, match="not a readable edgemnist checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_train_cli_one_epoch_json(tmp_path):
    out = tmp_path / "one.pt"
    proc = run_cli("train", "--epochs", "1", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"test_accuracy", "seconds", "checkpoint", "epochs", "device"} <= result.keys()
    assert result["epochs"] == 1 and result["checkpoint"] == str(out) and out.is_file()
    assert 0.95 < result["test_accuracy"] <= 1.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hidden", "0,5"], "--hidden wants comma-separated positive integers"),
        (["--hidden", "a,b"], "--hidden wants comma-separated positive integers"),
        (["--epochs", "-1"], "--epochs must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--out", "/proc/edgemnist/mlp.pt"], "cannot create directory"),
    ],
)
def test_train_bad_input_is_one_line_and_nonzero(tmp_path, args, message):
    proc = cli("train", *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "exported").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_train_device_cuda_without_cuda_exits_2_and_writes_nothing(tmp_path):
    proc = run_cli("train", "--device", "cuda", "--out", str(tmp_path / "x.pt"))
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_train_on_cuda(tmp_path):
    model, metrics = train(MLPConfig(), TrainConfig(epochs=1), device="cuda")
    assert metrics["device"].startswith("cuda") and metrics["test_accuracy"] > 0.95


def test_failed_save_keeps_the_good_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    good = MLP(MLPConfig(hidden=(8,)))
    save_checkpoint(path, good, TrainConfig(epochs=1), {})
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)  # dies after the bytes are written, before the rename
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, MLP(MLPConfig(hidden=(16,))), TrainConfig(epochs=1), {})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
