"""From a picture file to probabilities: edgemnist's preprocessing against the tutorials' plain
`Image.open(f).convert("L").resize((28, 28))`, and against the model alone, side by side in one run.

    python -m benchmarks.image_path [--n 40] [--rounds 15] [--accuracy 1000] [--model exported/mlp.int8.onnx] [--json out.json]

Inputs (written to a temporary directory, MNIST never committed; testkit/realworld.py renders them):
- mnist-28: MNIST test digits as 28x28 PNGs (the MNIST form: passed through as they are);
- crops-28-64: tight and edge-touching crops of 28-64 px, dark on light;
- scans-400: 400x400 PNG scans;  renderings: the real-world renderings, 80-720 px, PNG/JPEG/WebP;
- jpeg-640x480 and jpeg-1920x1440: photos of a digit on paper.
Per image and per path, file -> probabilities (decode, preprocessing, one onnxruntime call, softmax),
one thread, the paths interleaved in a shuffled order each round; p50/p90 over every image x round.
The plain path inverts (the tutorials' `ImageOps.invert` for dark ink on white), nothing else.
Accuracy: both paths on the held-out slices (test images 5000-9999) of the renderings and of the crops
(`--accuracy` images each), next to the model on the same digits clean.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from edgemnist import data, runtime
from edgemnist.contract import images_to_pixels
from edgemnist.cpu import cpu_info, describe
from edgemnist.preprocess import PreprocessError, preprocess
from testkit import realworld, timing

ROOT = Path(__file__).resolve().parents[1]


def plain(path: str) -> np.ndarray:
    """The tutorials' path: grayscale, squash to 28x28, invert dark ink on white."""
    with Image.open(path) as im:
        return 1.0 - np.asarray(im.convert("L").resize((28, 28)), np.float32) / 255.0


def write_inputs(mnist, n: int, out: Path) -> dict[str, list[str]]:
    rng = np.random.default_rng(0)
    pick = rng.choice(5000, size=n, replace=False)  # the tuning slice: speed only
    sets: dict[str, list[str]] = {k: [] for k in ("mnist-28", "crops-28-64", "scans-400", "renderings", "jpeg-640x480", "jpeg-1920x1440")}
    for j, i in enumerate(pick):
        digit = mnist.test_images[i]
        path = out / f"m{j}.png"
        Image.fromarray(digit).save(path)
        sets["mnist-28"].append(str(path))
        crop = realworld.render_crop(digit, rng, out / f"c{j}", {}, kind=str(rng.choice(["tight", "edges"])))
        with Image.open(crop) as im:  # the crop brought to 28-64 px, dark on light as most crops are
            side = int(rng.integers(28, 65))
            f = side / max(im.size)
            small = im.convert("L").resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.Resampling.LANCZOS)
        a = np.asarray(small)
        if np.median(a) < 128:
            a = 255 - a
        Image.fromarray(a).save(out / f"c{j}.png")
        sets["crops-28-64"].append(str(out / f"c{j}.png"))
        sets["scans-400"].append(str(realworld.render(digit, rng, out / f"s{j}", size=(400, 400), kind="scan", fmt="png")))
        sets["renderings"].append(str(realworld.render(digit, rng, out / f"r{j}")))
        sets["jpeg-640x480"].append(str(realworld.render(digit, rng, out / f"p{j}", size=(640, 480), kind="photo", fmt="jpeg")))
        sets["jpeg-1920x1440"].append(str(realworld.render(digit, rng, out / f"q{j}", size=(1920, 1440), kind="photo", fmt="jpeg")))
    return sets


def timings(model: runtime.Model, sets: dict[str, list[str]], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per image for each set and path, interleaved: each round visits every (set, image) in
    a new shuffled order and runs the three paths on it in a shuffled order."""
    polarity = "light-on-dark"
    clean = np.zeros((1, 1, 28, 28), np.float32)
    paths = {
        "edgemnist": lambda p: runtime.softmax(model.logits(preprocess(p, polarity)[None, None])),
        "plain resize": lambda p: runtime.softmax(model.logits(plain(p)[None, None])),
        "model alone": lambda p: runtime.softmax(model.logits(clean)),
    }
    jobs = [(s, p) for s, files in sets.items() for p in files]
    for fn in paths.values():  # warm-up
        fn(jobs[0][1])
    return timing.per_input(jobs, paths, rounds)


def accuracy(model: runtime.Model, mnist, n: int, out: Path) -> dict[str, dict[str, float]]:
    result = {}
    builders = {"renderings (held-out)": realworld.build, "crops (held-out)": realworld.build_crops}
    for name, build in builders.items():
        paths, labels, idx = build(mnist.test_images, mnist.test_labels, n, out / name.split()[0], seed=5, part=realworld.HELD_OUT)
        ours, theirs = [], []
        for p in paths:
            try:
                ours.append(preprocess(p))
            except PreprocessError:
                ours.append(np.zeros((28, 28), np.float32))  # counted wrong
            theirs.append(plain(p))
        clean = model.logits(images_to_pixels(mnist.test_images[idx])).argmax(1)
        result[name] = {
            "n": n,
            "edgemnist": float((model.logits(np.stack(ours)[:, None]).argmax(1) == labels).mean()),
            "plain resize": float((model.logits(np.stack(theirs)[:, None]).argmax(1) == labels).mean()),
            "clean 28x28": float((clean == labels).mean()),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40, help="images per input kind")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--accuracy", type=int, default=1000, help="held-out images per accuracy set (0: skip)")
    parser.add_argument("--model", default=str(ROOT / "exported/mlp.int8.onnx"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    mnist = data.load(quiet=True)
    model = runtime.open_model(args.model, "cpu", threads=1, quiet=True)
    with tempfile.TemporaryDirectory() as tmp:
        sets = write_inputs(mnist, args.n, Path(tmp))
        times = timings(model, sets, args.rounds)
        acc = accuracy(model, mnist, args.accuracy, Path(tmp)) if args.accuracy else {}
    rows = []
    print(f"# {describe(cpu_info())}; model {Path(args.model).name}; 1 thread; {args.n} images x {args.rounds} rounds per kind")
    print("| input | edgemnist p50 / p90 ms | plain resize p50 / p90 ms | model alone p50 µs | edgemnist / plain (p50) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for s, paths in times.items():
        q = {k: np.percentile(v, [50, 90]) for k, v in paths.items()}
        row = {"input": s, **{f"{k} p50_ms": float(v[0] * 1e3) for k, v in q.items()},
               **{f"{k} p90_ms": float(v[1] * 1e3) for k, v in q.items()},
               "ratio_p50": float(q["edgemnist"][0] / q["plain resize"][0])}
        rows.append(row)
        print(f"| {s} | {q['edgemnist'][0] * 1e3:.2f} / {q['edgemnist'][1] * 1e3:.2f} | {q['plain resize'][0] * 1e3:.2f} / "
              f"{q['plain resize'][1] * 1e3:.2f} | {q['model alone'][0] * 1e6:.0f} | {row['ratio_p50']:.2f}× |")
    if acc:
        print("\n| held-out set | edgemnist | plain resize | the same digits clean (28x28) |")
        print("| --- | ---: | ---: | ---: |")
        for name, a in acc.items():
            print(f"| {name}, n {a['n']} | {a['edgemnist']:.2%} | {a['plain resize']:.2%} | {a['clean 28x28']:.2%} |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_info(), "model": args.model, "rows": rows, "accuracy": acc}, indent=2))


if __name__ == "__main__":
    main()
