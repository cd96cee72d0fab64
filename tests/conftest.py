"""Shared, expensive fixtures: the real MNIST data, and one model trained with the default recipe,
exported to fp32 + int8 once per session."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m edgemnist ARGS` in a fresh process: real exit codes, real stdout/stderr."""
    return subprocess.run(
        [sys.executable, "-m", "edgemnist", *args],
        capture_output=True, text=True, cwd=cwd or ROOT, env={**os.environ, **(env or {})}, timeout=timeout,
    )


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`edgemnist ARGS` in this process, through the same `main()` (exit codes, one-line errors):
    for tests of messages, where a fresh process would only add start-up time."""
    from edgemnist.cli import main

    out, err, argv, here = io.StringIO(), io.StringIO(), sys.argv, os.getcwd()
    try:
        sys.argv = ["edgemnist", *args]
        os.chdir(cwd or ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as e:
                code = e.code or 0
    finally:
        sys.argv = argv
        os.chdir(here)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def read_line(stream, seconds: float = 30) -> str:
    """One line from a child's pipe, or the test fails after `seconds`: a child that dies or stays
    silent fails the test instead of hanging the suite (the caller's `finally` ends the child, which
    ends the read)."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    if not box:
        pytest.fail(f"no line from the child process within {seconds:g} s")
    return box[0]


@pytest.fixture(scope="session")
def mnist():
    from edgemnist import data

    return data.load()


@pytest.fixture(scope="session")
def trained(tmp_path_factory, mnist):
    """The default recipe (`edgemnist train` defaults) on the real data: (checkpoint path, metrics)."""
    from edgemnist.settings import MLPConfig, TrainConfig
    from edgemnist.training import train

    cfg = TrainConfig()
    model, metrics = train.train(MLPConfig(), cfg, device="cpu")
    path = tmp_path_factory.mktemp("trained") / "mlp.pt"
    train.save_checkpoint(path, model, cfg, metrics)
    return path, metrics


@pytest.fixture(scope="session")
def exported(trained):
    """That checkpoint through `export --quantize --input uint8` (static int8, and its uint8-input
    twin): the parity report."""
    from edgemnist.training.export import export_checkpoint

    checkpoint, _ = trained
    return export_checkpoint(checkpoint, checkpoint.parent / "mlp.onnx", quantize=True, uint8_input=True)


@pytest.fixture(scope="session")
def full_range(trained, tmp_path_factory):
    """The same checkpoint quantized the pre-portable way (8-bit weights, --weight-bits 8): its u8s8
    pair sums saturate on x86 without VNNI. The parity report (files are written even if it fails)."""
    from edgemnist.settings import QuantSettings
    from edgemnist.training.export import export_checkpoint

    out = tmp_path_factory.mktemp("full_range") / "full.onnx"
    return export_checkpoint(trained[0], out, settings=QuantSettings(weight_bits=8))


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium through Playwright, one per session; the browser tests skip without it."""
    import browser as b

    why = b.unavailable()
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = b.launch(p)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def sites(tmp_path_factory):
    """The committed reference models as built sites: {"int8": path, "fp32": path}."""
    from edgemnist import web

    root = tmp_path_factory.mktemp("sites")
    return {name: Path(web.build(root / name, ROOT / "exported" / model)["site"])
            for name, model in (("int8", "mlp.int8.onnx"), ("fp32", "mlp.onnx"))}


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """An elliptic-curve key pair in PEM, as `openssl ecparam -name prime256v1 -genkey` makes it:
    {"private": path, "public": path, "other_public": a key that signed nothing}. Only the signature
    tests use it: they skip, naming the extra, where [sign] is not installed."""
    pytest.importorskip("model_signing", reason="the [sign] extra is not installed (pip install -e '.[sign]')")
    pytest.importorskip("cryptography", reason="the [sign] extra is not installed (pip install -e '.[sign]')")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    root = tmp_path_factory.mktemp("keys")
    paths = {}
    for name in ("", "other_"):
        key = ec.generate_private_key(ec.SECP256R1())
        paths[f"{name}private"] = root / f"{name}key.pem"
        paths[f"{name}private"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))
        paths[f"{name}public"] = root / f"{name}pub.pem"
        paths[f"{name}public"].write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return paths
