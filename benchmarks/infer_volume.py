"""`edgemnist infer` over folders of many files: images/s with --jobs 1 and --jobs 2 (interleaved runs,
medians), peak memory of the whole process tree (the CLI and its workers, sampled from /proc), and
the time to the first result on stdout.

    python -m benchmarks.infer_volume [--png 10000] [--jpeg 2000] [--runs 3] [--scale 100000]

Writes MNIST test digits as 28x28 PNGs (dark on light) and 640x480 JPEG photos (testkit/realworld.py)
into a temporary folder; `--scale N` also runs --jobs 2 over N files (hard links of the PNGs, so the
folder really holds N entries) to show that memory does not grow with the number of files.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from edgemnist import data
from edgemnist.cpu import cpu_info, describe
from testkit import realworld

ROOT = Path(__file__).resolve().parents[1]


def _tree_peaks_kb(root: int, peaks: dict[int, int]) -> None:
    """Update `peaks` with the peak resident memory (VmHWM) of `root` and every process descended from
    it (the forkserver and the workers), read from /proc: cheap enough to sample while timing."""
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        try:
            with open(f"/proc/{pid}/status") as f:
                hwm = next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
            peaks[pid] = max(peaks.get(pid, 0), hwm)
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    frontier.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue


def run(folder: Path, jobs: int) -> dict:
    cmd = [sys.executable, "-m", "edgemnist", "infer", str(folder), "--json", "--provider", "cpu", "--jobs", str(jobs)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = None
    peaks: dict[int, int] = {}
    lines = 0
    last_sample = 0.0
    for _ in proc.stdout:
        lines += 1
        now = time.perf_counter()
        if first is None:
            first = now - start
        if now - last_sample > 0.25:
            _tree_peaks_kb(proc.pid, peaks)
            last_sample = now
    proc.wait()
    peak = sum(peaks.values())  # each process's own peak, summed: an upper bound of the tree's
    seconds = time.perf_counter() - start
    return {"jobs": jobs, "images": lines, "images_per_s": lines / seconds, "first_result_s": first,
            "peak_tree_rss_mb": peak / 1024, "summary": proc.stderr.read().strip().splitlines()[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--png", type=int, default=10000)
    parser.add_argument("--jpeg", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=int, default=0, help="also run over this many files (hard links)")
    args = parser.parse_args()
    mnist = data.load(quiet=True)
    rng = np.random.default_rng(0)
    print(f"# {describe(cpu_info())}")
    with tempfile.TemporaryDirectory() as tmp:
        pngs, jpegs = Path(tmp) / "png", Path(tmp) / "jpeg"
        for i in range(args.png):
            folder = pngs / f"{i // 1000:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(255 - mnist.test_images[i % 10000]).save(folder / f"{i:06d}.png")
        jpegs.mkdir()
        for i in range(args.jpeg):
            realworld.render(mnist.test_images[i % 10000], rng, jpegs / f"p{i:05d}", size=(640, 480), kind="photo", fmt="jpeg")
        print("| folder | --jobs 1 images/s | --jobs 2 images/s | ratio | first result (s) | peak RSS, CLI + workers (MB) |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, folder in ((f"{args.png:,} MNIST-size PNGs", pngs), (f"{args.jpeg:,} 640x480 JPEGs", jpegs)):
            results = {1: [], 2: []}
            for _ in range(args.runs):  # interleaved: the machine's slow phases hit both alike
                for jobs in (1, 2):
                    results[jobs].append(run(folder, jobs))
            med = {j: float(np.median([r["images_per_s"] for r in rs])) for j, rs in results.items()}
            first = max(r["first_result_s"] for rs in results.values() for r in rs)
            peak = max(r["peak_tree_rss_mb"] for rs in results.values() for r in rs)
            print(f"| {name} | {med[1]:.0f} | {med[2]:.0f} | {med[2] / med[1]:.2f}x | {first:.2f} (worst) | {peak:.0f} |")
        if args.scale:
            big = Path(tmp) / "big"
            files = sorted(pngs.rglob("*.png"))
            for i in range(args.scale):
                folder = big / f"{i // 1000:03d}"
                folder.mkdir(parents=True, exist_ok=True)
                os.link(files[i % len(files)], folder / f"{i:06d}.png")
            r = run(big, 2)
            print(f"| {args.scale:,} PNGs (hard links), --jobs 2 only | | {r['images_per_s']:.0f} | | {r['first_result_s']:.2f} | {r['peak_tree_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
