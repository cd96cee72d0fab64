"""What the Python API costs beyond the preprocessing: `model.classify(array)` on in-memory pictures
(no file I/O) against the preprocessing alone (`to_mnist(work_gray(...), Seen())`, as `infer` runs it),
interleaved, medians.

    python -m benchmarks.api_overhead [--n 40] [--rounds 20]

The difference is the API's own work plus one onnxruntime call (batch 1, one thread) and the softmax.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import edgemnist
from edgemnist import data
from edgemnist.cpu import cpu_info, describe
from edgemnist.preprocess import Seen, to_mnist, work_gray
from testkit import realworld, timing

ROOT = Path(__file__).resolve().parents[1]


def pictures(n: int, tmp: Path) -> dict[str, list[np.ndarray]]:
    mnist = data.load(quiet=True)
    rng = np.random.default_rng(0)
    sets: dict[str, list[np.ndarray]] = {"60-px crops, gray uint8": [], "400-px scans, gray uint8": [],
                                         "640x480 photos, RGB uint8": []}
    for i in range(n):
        digit = mnist.test_images[i]
        sets["60-px crops, gray uint8"].append(np.asarray(Image.fromarray(255 - digit).resize((60, 60), Image.Resampling.LANCZOS)))
        scan = realworld.render(digit, rng, tmp / f"s{i}", size=(400, 400), kind="scan", fmt="png")
        sets["400-px scans, gray uint8"].append(np.asarray(Image.open(scan).convert("L")))
        photo = realworld.render(digit, rng, tmp / f"p{i}", size=(640, 480), kind="photo", fmt="png")
        sets["640x480 photos, RGB uint8"].append(np.asarray(Image.open(photo).convert("RGB")))
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    import tempfile

    model = edgemnist.load(provider="cpu", threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        sets = pictures(args.n, Path(tmp))
    paths = {
        "preprocessing alone": lambda a: to_mnist(work_gray(Image.fromarray(a)), Seen()),  # as infer runs it, what it saw kept
        "model.classify(array)": model.classify,
    }
    times = timing.per_input([(s, a) for s, arrays in sets.items() for a in arrays], paths, args.rounds)
    print(f"# {describe(cpu_info())}; {model!r}; {args.n} pictures x {args.rounds} rounds, interleaved")
    print("| picture in memory | preprocessing alone p50 µs | `model.classify` p50 µs | cost beyond the preprocessing |")
    print("| --- | ---: | ---: | ---: |")
    for s, t in times.items():
        pre, api = (float(np.median(t[k])) * 1e6 for k in paths)
        print(f"| {s} | {pre:.0f} | {api:.0f} | {api / pre - 1:+.1%} ({api - pre:.0f} µs) |")


if __name__ == "__main__":
    main()
