"""Accuracy of `edgemnist infer` on MNIST *test* digits rendered the way people produce digits
(dark ink on white/cream paper, 100-600 px canvases, off-centre, thin/thick strokes, rotation, noise,
JPEG/WebP compression, RGBA transparency), next to the same model on the clean 28x28 digits.

    python benchmarks/realworld_accuracy.py [--n 1000] [--model exported/mlp.int8.onnx]

The renderer is tests/realworld.py, the one the test suite asserts on (>= 97%, and at most 2 pp
below clean). Images are written to a temporary directory and classified by one `edgemnist infer
--json` process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import realworld  # noqa: E402

from edgemnist import data, runtime  # noqa: E402
from edgemnist.contract import images_to_pixels  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--model", default=str(ROOT / "exported/mlp.int8.onnx"))
    args = parser.parse_args()
    mnist = data.load(quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths, labels, idx = realworld.build(mnist.test_images, mnist.test_labels, args.n, Path(tmp), seed=args.seed)
        cmd = [sys.executable, "-m", "edgemnist", "infer", *paths, "--model", args.model, "--provider", "cpu", "--json"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    predicted = np.array([r.get("label", -1) for r in results])
    model = runtime.open_model(args.model, "cpu", quiet=True)
    clean = model.logits(images_to_pixels(mnist.test_images[idx])).argmax(1)
    print(f"real-world renderings: {np.mean(predicted == labels):.2%} of {len(labels)} "
          f"(errors: {sum('error' in r for r in results)}); the same digits clean: {np.mean(clean == labels):.2%}; "
          f"model {Path(args.model).name}")
    for r in results:
        if "error" in r:
            print(f"  {Path(r['path']).name}: {r['error']}")


if __name__ == "__main__":
    main()
