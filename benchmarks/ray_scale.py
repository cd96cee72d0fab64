"""`infer --engine ray` against `infer --jobs 2` on the same files, as people run them (fresh processes,
results written to a file), and how Ray's throughput grows from one reader actor to two.

    python -m benchmarks.ray_scale [--n 20000] [--runs 3]

Rows, each run `--runs` times, interleaved, wall time of the whole command, p50 reported:
- `infer --jobs 2` (this machine's worker processes);
- `--engine ray`, a local Ray started by the command (its ~3 s start-up included);
- `--engine ray --address`, joining a Ray already running (`ray start --head`, on loopback here), as on
  a cluster, with 1 and with 2 reader actors (`--jobs`);
and the fixed costs (the last command on one batch of 256 files), taken off to give the readers' own
throughput with 1 and 2 actors.
The files: MNIST test digits as PNGs, half of them light on dark (MNIST form, passed through) and
half dark on light (the whole preprocessing). Every command's results file is checked against the
first one's, picture by picture.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from edgemnist import cpu, data

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "exported" / "mlp.int8.onnx"
BIN = Path(sys.executable).parent
PORT = 6391  # the head's GCS port, loopback only


def make_files(out: Path, n: int) -> None:
    mnist = data.load(quiet=True)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        digit = mnist.test_images[i % len(mnist.test_images)]
        Image.fromarray(digit if (i // len(mnist.test_images)) % 2 else 255 - digit).save(out / f"{i:06d}.png")


def run(args: list[str], out: Path) -> float:
    """Seconds for one `edgemnist infer ... --out out` in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.run([str(BIN / "edgemnist"), "infer", *args, "--model", str(MODEL), "--out", str(out)],
                          capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr[-1000:]}")
    return seconds


def answers(path: Path) -> dict[str, tuple]:
    rows = (json.loads(line) for line in path.read_text().splitlines())
    return {r["path"]: (r["label"], r["sure"], r["error"]) for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="files")
    parser.add_argument("--runs", type=int, default=3, help="runs of each row (p50 reported)")
    opts = parser.parse_args()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # the head below is this machine's own, on loopback
    address = f"127.0.0.1:{PORT}"
    rows = {
        "infer --jobs 2": ["--jobs", "2"],
        "--engine ray (starts a local Ray)": ["--engine", "ray"],
        "--engine ray --address (running Ray), 2 actors": ["--engine", "ray", "--address", address, "--jobs", "2"],
        "--engine ray --address (running Ray), 1 actor": ["--engine", "ray", "--address", address, "--jobs", "1"],
    }
    fixed = ["--engine", "ray", "--address", address, "--jobs", "2"]  # on one batch of files: the fixed costs
    with tempfile.TemporaryDirectory() as tmp:
        files, one_batch = Path(tmp) / "files", Path(tmp) / "one_batch"
        make_files(files, opts.n)
        make_files(one_batch, 256)
        seconds_fixed: list[float] = []
        subprocess.run([str(BIN / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(PORT),
                        "--num-cpus", str(os.cpu_count()), "--include-dashboard", "false", "--disable-usage-stats"],
                       check=True, capture_output=True, env=env, timeout=120)
        try:
            seconds: dict[str, list[float]] = {name: [] for name in rows}
            rng = np.random.default_rng(1)
            reference = None
            for _ in range(opts.runs):
                for k in rng.permutation(len(rows)):
                    name = list(rows)[k]
                    out = Path(tmp) / f"out{k}.jsonl"
                    seconds[name].append(run([str(files), *rows[name]], out))
                    got = answers(out)
                    reference = reference or got
                    assert got == reference, f"{name}: answers differ from the first run's"
                seconds_fixed.append(run([str(one_batch), *fixed], Path(tmp) / "fixed.jsonl"))
        finally:
            subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, env=env, timeout=120)
    base = statistics.median(seconds["infer --jobs 2"])
    print(f"{opts.n:,} PNGs (half MNIST form, half dark on light), {cpu.describe()}, "
          f"p50 of {opts.runs} runs, whole commands, results to .jsonl\n")
    print("| command | p50 s | images/s | vs infer --jobs 2 |\n| --- | ---: | ---: | ---: |")
    for name, values in seconds.items():
        p50 = statistics.median(values)
        print(f"| `{name}` | {p50:.2f} | {opts.n / p50:,.0f} | {base / p50:.2f}× |")
    one = statistics.median(seconds["--engine ray --address (running Ray), 1 actor"])
    two = statistics.median(seconds["--engine ray --address (running Ray), 2 actors"])
    cost = statistics.median(seconds_fixed)
    print(f"\n1 -> 2 reader actors on a running Ray: {one / two:.2f}× the images/s, whole commands")
    print(f"fixed costs (the same command on 256 files): {cost:.2f} s; without them 1 -> 2 readers: "
          f"{(opts.n - 256) / (one - cost):,.0f} -> {(opts.n - 256) / (two - cost):,.0f} images/s, "
          f"{(one - cost) / (two - cost):.2f}×")


if __name__ == "__main__":
    main()
