"""Smoke test of benchmarks/edge_runtimes.py (onnxruntime vs LiteRT vs ExecuTorch), run tiny. Needs the
`[compare]` extra; skipped without it (the default test environment does not install it)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from conftest import ROOT

MISSING = [m for m in ("executorch", "ai_edge_litert", "litert_torch") if importlib.util.find_spec(m) is None]


@pytest.mark.skipif(bool(MISSING), reason=f"needs pip install -e '.[train,compare]' (missing: {', '.join(MISSING)})")
def test_edge_runtimes_tiny_run_reports_every_runtime():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.edge_runtimes", "--tiny", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout)
    assert {(row["runtime"], row["precision"]) for row in r["rows"]} == {
        (rt, p) for rt in ("onnxruntime", "litert", "executorch") for p in ("fp32", "int8")} | {("onnxruntime", "int8-uint8-input")}
    for row in r["rows"]:
        assert row["accuracy"] > 0.97 and row["agreement_with_torch"] > 0.99 and row["p50_us"] > 0, row
        assert row["cold_start_s"] and row["peak_rss_mb"], row
    assert set(r["floors"]) == {"onnxruntime", "litert", "executorch"}
