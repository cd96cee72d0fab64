"""Whole numbers read by `edgemnist infer`: pictures of 2-6 handwritten digits in one line, built from
MNIST *test* digits (testkit/written_numbers.py), for each kind the share of numbers read whole and right, the
share answered "sure", the share of wrong answers marked sure and the share of numbers answered as one sure
digit (digits touching so that they read as one); then the time from file to answer
of a five-digit 640x480 photo against a one-digit photo of the same size.

    python -m benchmarks.numbers [--n 400] [--slice tuning|held-out] [--kinds gaps,close,touching,zip,photo,leaning]
                                 [--mail DIR] [--model exported/mlp.int8.onnx] [--rounds 200] [--known-count]

`--mail DIR` adds the kind "mail": five-digit ZIP codes, laid out as "zip" is, of digits cut from real
mail (the USPS ZIP-code digits, testkit/mail.py); its slice is zip.train (tuning) or zip.test (held-out).
`--known-count` reads each number with `--digits` its own length, as for a ZIP code or a form box.

The segmentation was tuned on the `tuning` slice (test digits 0-4999); `held-out` (5000-9999) is measured,
never tuned on. Each kind is read by one `edgemnist infer --json` process, as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgemnist import data, runtime
from edgemnist.cpu import cpu_info, describe
from edgemnist.preprocess import prepare
from edgemnist.timing import interleaved
from testkit import mail, realworld, written_numbers

ROOT = Path(__file__).resolve().parents[1]


def accuracy(paths: list[str], want: list[str], model: str, known_count: bool = False) -> dict:
    """One `infer --json` run over the pictures (`known_count`: one per length, with `--digits` that
    length, as a user who knows it runs it) -> right, sure, wrong-but-sure and one-sure-digit shares."""
    rows = {}
    for n in sorted(set(map(len, want))) if known_count else [None]:
        some = [p for p, w in zip(paths, want) if n is None or len(w) == n]
        digits = [] if n is None else ["--digits", str(n)]
        run = subprocess.run([sys.executable, "-m", "edgemnist", "infer", "--json", "--model", model, *digits, *some],
                             capture_output=True, text=True, cwd=ROOT)
        rows |= {r["path"]: r for r in map(json.loads, run.stdout.splitlines())}
    got = [rows[p] for p in paths]
    right = [r.get("number") == w for r, w in zip(got, want)]
    sure = [bool(r.get("sure")) for r in got]
    return {"n": len(paths), "right": float(np.mean(right)), "sure": float(np.mean(sure)),
            "wrong_but_sure": float(np.mean([s and not ok for s, ok in zip(sure, right)])),
            "one_sure_digit": float(np.mean([s and len(r.get("number") or "") == 1 for s, r in zip(sure, got)]))}


def timing(mnist, tmp: Path, model: runtime.Model, rounds: int) -> dict:
    """p50 seconds, file to answer, of a five-digit and a one-digit 640x480 photo (20 of each), side by side."""
    from edgemnist.answers import for_prepared

    rng = np.random.default_rng(7)
    five = [str(written_numbers.render([mnist.test_images[i] for i in rng.choice(5000, 5) + 5000], "photo", rng, tmp / f"p5_{j}"))
            for j in range(20)]
    one = [str(realworld.render(mnist.test_images[5000 + j], rng, tmp / f"p1_{j}", size=(640, 480), kind="photo", fmt="jpeg"))
           for j in range(20)]

    def read(path: str) -> None:
        list(for_prepared(model, [path], prepare([(path, False)], model.polarity)))

    calls = {(kind, j): (lambda p=p: read(p)) for kind, paths in (("five", five), ("one", one)) for j, p in enumerate(paths)}
    us = interleaved(calls, 0.0, rounds, warmup=1, seed=3, group=lambda key: key[1])
    p50 = {kind: float(np.median(np.concatenate([v for (k, _), v in us.items() if k == kind]))) / 1e6 for kind in ("five", "one")}
    return {"five_digit_photo_s": p50["five"], "one_digit_photo_s": p50["one"], "ratio": p50["five"] / p50["one"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=400, help="pictures per kind")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--slice", choices=["tuning", "held-out"], default="held-out")
    parser.add_argument("--kinds", default=",".join(written_numbers.KINDS))
    parser.add_argument("--mail", type=Path, help="the folder holding zip.train.gz and zip.test.gz: adds the kind mail")
    parser.add_argument("--model", default=str(ROOT / "exported/mlp.int8.onnx"))
    parser.add_argument("--rounds", type=int, default=20, help="timing rounds (0: no timing)")
    parser.add_argument("--known-count", action="store_true", help="read each number with --digits its own length")
    args = parser.parse_args()
    part = realworld.TUNING if args.slice == "tuning" else realworld.HELD_OUT
    try:
        mail_digits = mail.load(args.mail, mail.TUNING if args.slice == "tuning" else mail.HELD_OUT) if args.mail else None
    except ValueError as e:
        parser.error(str(e))
    mnist = data.load(quiet=True)
    sources = {kind: (mnist.test_images, mnist.test_labels, part, kind) for kind in args.kinds.split(",")}
    if mail_digits is not None:
        sources["mail"] = (mail.as_mnist(mail_digits[0]), mail_digits[1], slice(None), "zip")
    print(f"CPU: {describe(cpu_info())}; model {args.model}; {args.slice} slice, {args.n} numbers per kind"
          + (", each read with --digits its length" if args.known_count else ""))
    print(f"{'kind':10} {'right':>7} {'sure':>7} {'wrong but sure':>15} {'one sure digit':>15}")
    report: dict = {"cpu": describe(cpu_info()), "slice": args.slice, "known_count": args.known_count, "kinds": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for kind, (images, labels, digits, layout) in sources.items():
            paths, want = written_numbers.build(images, labels, args.n, Path(tmp) / kind, layout, seed=args.seed, part=digits)
            r = report["kinds"][kind] = accuracy(paths, want, args.model, args.known_count)
            print(f"{kind:10} {r['right']:7.1%} {r['sure']:7.1%} {r['wrong_but_sure']:15.1%} {r['one_sure_digit']:15.1%}")
        if args.rounds:
            t = report["timing"] = timing(mnist, Path(tmp), runtime.open_model(args.model, quiet=True), args.rounds)
            print(f"file to answer, p50: five-digit photo {t['five_digit_photo_s'] * 1e3:.2f} ms, "
                  f"one-digit photo {t['one_digit_photo_s'] * 1e3:.2f} ms: {t['ratio']:.2f}x")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
