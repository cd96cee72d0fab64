"""Accuracy of `edgemnist infer` on MNIST *test* digits rendered the way people produce digits
(photos and scans of paper in many colours, textures and lightings, pens and pencils, blur,
perspective, JPEG/WebP, canvases with transparency, light ink on dark boards), next to the same model
on the clean 28x28 digits.

    python -m benchmarks.realworld_accuracy [--n 1000] [--slice tuning|held-out]
                                            [--set renderings|crops|tight|margin|handwriting|mail] [--mail DIR]
                                            [--model exported/mlp.int8.onnx]

`--set crops`: crops of every kind (tight, touching edges, tiny, blocky, form cells, neighbours'
pieces), with the accuracy per kind; `tight` and `margin`: the same digits cropped tight to the ink
and with paper all round; `handwriting`: digits drawn as pen strokes in the forms MNIST's writers
rarely used and the common ones (testkit/handwriting.py; no MNIST digit, so no clean comparison);
`mail --mail DIR`: digits cut from real mail (the USPS ZIP-code digits, testkit/mail.py), tight and with
a margin, either polarity, the slice choosing zip.train (tuning) or zip.test (held-out).

The renderer is testkit/realworld.py, the one the test suite asserts on. Preprocessing was tuned on the
`tuning` slice (test images 0-4999) only; `held-out` (5000-9999) is measured, never tuned on.
Images are written to a temporary directory and classified by one `edgemnist infer --json` process;
`--keep DIR` keeps the misclassified ones there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgemnist import data, runtime
from edgemnist.contract import images_to_pixels
from edgemnist.cpu import cpu_info, describe
from testkit import handwriting, mail, realworld

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--model", default=str(ROOT / "exported/mlp.int8.onnx"))
    parser.add_argument("--slice", choices=["tuning", "held-out"], default="tuning")
    parser.add_argument("--set", choices=["renderings", "crops", "tight", "margin", "handwriting", "mail"], default="renderings")
    parser.add_argument("--mail", type=Path, help="the folder holding zip.train.gz and zip.test.gz (for --set mail)")
    parser.add_argument("--keep", type=Path, help="copy the misclassified images here")
    args = parser.parse_args()
    part = realworld.TUNING if args.slice == "tuning" else realworld.HELD_OUT
    if args.set == "mail" and args.mail is None:
        parser.error("--set mail needs --mail DIR (testkit/mail.py says where to get the files)")
    try:
        mail_digits = mail.load(args.mail, mail.TUNING if args.slice == "tuning" else mail.HELD_OUT) if args.set == "mail" else None
    except ValueError as e:
        parser.error(str(e))
    mnist = data.load(quiet=True)
    clean_images = mnist.test_images
    with tempfile.TemporaryDirectory() as tmp:
        records: list[dict] = []
        idx = None
        if args.set == "handwriting":
            paths, labels = handwriting.build(args.n, Path(tmp), seed=args.seed, records=records)
        elif args.set == "mail":
            paths, labels, idx = mail.build(*mail_digits, args.n, Path(tmp), seed=args.seed, records=records)
            clean_images = mail.as_mnist(mail_digits[0])
        elif args.set == "renderings":
            paths, labels, idx = realworld.build(mnist.test_images, mnist.test_labels, args.n, Path(tmp), seed=args.seed, part=part)
        else:
            paths, labels, idx = realworld.build_crops(mnist.test_images, mnist.test_labels, args.n, Path(tmp), seed=args.seed,
                                                       part=part, records=records, kind=None if args.set == "crops" else args.set)
        cmd = [sys.executable, "-m", "edgemnist", "infer", *paths, "--model", args.model, "--provider", "cpu", "--json"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        results = [json.loads(line) for line in proc.stdout.splitlines()]
        predicted = np.array([r.get("label", -1) for r in results])
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for r, y in zip(results, labels):
                if r.get("label") != y:
                    shutil.copy(r["path"], args.keep / f"{Path(r['path']).stem}-true{y}-got{r.get('label', 'error')}{Path(r['path']).suffix}")
    model = runtime.open_model(args.model, "cpu", quiet=True)
    clean = "" if idx is None else f"the same digits clean: {np.mean(model.logits(images_to_pixels(clean_images[idx])).argmax(1) == labels):.2%}; "
    where = "no MNIST digit" if idx is None else f"{args.slice} slice"
    where += ", digits cut from mail" if args.set == "mail" else ""
    print(f"{args.set} ({where}, seed {args.seed}): {np.mean(predicted == labels):.2%} of {len(labels)} "
          f"(errors: {sum('error' in r for r in results)}, not sure: {sum(not r.get('sure', True) for r in results)}); "
          f"{clean}model {Path(args.model).name}; {describe(cpu_info())}")
    for key in ("kind", "polarity", "form", "pen"):
        groups = sorted({r[key] for r in records if key in r})
        if groups:
            print("  " + ", ".join(f"{g} {np.mean([p == y for p, y, r in zip(predicted, labels, records) if r.get(key) == g]):.1%}"
                                   f" (n {sum(r.get(key) == g for r in records)})" for g in groups))
    for r in results:
        if "error" in r:
            print(f"  {Path(r['path']).name}: {r['error']}")


if __name__ == "__main__":
    main()
