"""ARM64, the CPU of most edge devices: `edgemnist verify` of the reference int8 model under qemu-user,
on emulated CPUs with and without the dot-product/i8mm int8 kernels. Needs the environment that
`bash benchmarks/arm64_verify.sh --setup-only` builds (as root; `.ci/run` does it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgemnist import data

from conftest import ROOT

ARM = Path(os.environ.get("EDGEMNIST_ARM64_HOME") or data.home() / "arm64")
READY = bool(shutil.which("qemu-aarch64-static")) and (ARM / "site/.complete").is_file() and (ARM / "sysroot/usr/bin/python3.11").is_file()

pytestmark = [
    pytest.mark.arm64,
    pytest.mark.skipif(not READY, reason=f"no ARM64 environment in {ARM}: run `bash benchmarks/arm64_verify.sh --setup-only` as root"),
]


def test_reference_int8_model_verifies_on_emulated_arm64_cpus(mnist):
    # i8mm + dot product kernels / plain NEON. SVE and SME off: qemu emulates SVE code slowly (on an
    # Intel Xeon host `max` took 143 s against 47 s without them), and the int8 kernels under test are
    # the same NEON i8mm ones; `bash benchmarks/arm64_verify.sh` run by hand keeps the full `max`
    i8mm = "max,sve=off,sme=off"
    cpus = {i8mm: "arm64-i8mm", "cortex-a72": "arm64-neon"}
    proc = subprocess.run(
        ["bash", "benchmarks/arm64_verify.sh", "exported/mlp.int8.onnx"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "ARM64_CPUS": " ".join(cpus)}, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["qemu_cpu"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(rows) == set(cpus)
    manifest = json.loads((ROOT / "exported/manifest.json").read_text())
    for cpu, r in rows.items():
        assert r["passed"] and r["cpu"]["arch"] == "aarch64" and r["cpu"]["int8_kernels"] == cpus[cpu]
        # exact integer kernels on ARM64: the reference semantics are those recorded on x86
        assert r["reference_accuracy"] == pytest.approx(manifest["accuracy"]["int8_reference"], abs=1e-9)
    assert rows[i8mm]["accuracy"] == rows["cortex-a72"]["accuracy"]
