"""Digits cut from real mail: the US Postal Service's ZIP-code digits (LeCun et al., 1990), scanned from
envelopes, deslanted and scaled to a 16x16 frame, as published with "The Elements of Statistical
Learning": zip.train.gz (7,291 digits) and zip.test.gz (2,007, "notoriously difficult": people err on
about 2.5%). Each line is the label and 256 grey values in [-1, 1], light ink on dark.

Other writers, other pens, other scanners than MNIST's, and nobody on the project chose them. They are
not ours to ship: get both files from https://web.stanford.edu/~hastie/ElemStatLearn/datasets/ and pass
their folder (`load` checks them against SHA256). TUNING is zip.train, HELD_OUT zip.test: the
segmentation may be tuned on the first, never on the second.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

TUNING, HELD_OUT = "zip.train.gz", "zip.test.gz"
SHA256 = {TUNING: "66ebf231ab51f2cf6ac1a892d0f98ccffee1079d7a5db638c1f11f366046ca16",
          HELD_OUT: "8dacc3c6e136af6c3488de9e5113a7daf140c8c2f1f0b61c54ee02f03f1a962f"}


def load(folder: Path, part: str = HELD_OUT) -> tuple[np.ndarray, np.ndarray]:
    """One file of the folder -> (uint8 [N, 16, 16] light on dark, as published; int64 labels [N]).
    ValueError, in one line, when the file is missing, unreadable or not the published one."""
    try:
        raw = (Path(folder) / part).read_bytes()
    except OSError as e:
        raise ValueError(f"{Path(folder) / part}: {e.strerror or e} (testkit/mail.py says where to get it)") from None
    if hashlib.sha256(raw).hexdigest() != SHA256[part]:
        raise ValueError(f"{Path(folder) / part} is not the published {part} (SHA256 differs)")
    table = np.loadtxt(gzip.decompress(raw).decode().splitlines(), dtype=np.float32)
    grey = np.round((table[:, 1:] + 1) * 127.5).astype(np.uint8).reshape(-1, 16, 16)
    return grey, table[:, 0].astype(np.int64)


def as_mnist(digits: np.ndarray) -> np.ndarray:
    """16x16 digits -> 28x28 at MNIST's scale: each enlarged to the 20x20 box MNIST's digits fill,
    with 4 px of paper all round, so that `written_numbers` lines them up as it does MNIST's."""
    out = np.zeros((len(digits), 28, 28), np.uint8)
    for o, d in zip(out, digits):
        o[4:24, 4:24] = np.asarray(Image.fromarray(d).resize((20, 20), Image.Resampling.BICUBIC))
    return out


def build(digits: np.ndarray, labels: np.ndarray, n: int, out_dir: Path, seed: int = 0,
          records: list | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """n of the 16x16 digits, seeded, each written as a PNG: cropped as published ("tight") or with 2-6 px
    of paper all round ("margin"), either polarity, enlarged 1-4x -> (paths, labels, indices);
    `records` receives each picture's crop and polarity."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(digits), size=min(n, len(digits)), replace=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for j, i in enumerate(idx):
        crop = "tight" if rng.random() < 0.5 else "margin"
        ink = digits[i] if crop == "tight" else np.pad(digits[i], int(rng.integers(2, 7)))
        scale = int(rng.integers(1, 5))
        dark_on_light = bool(rng.random() < 0.5)
        im = Image.fromarray(255 - ink if dark_on_light else ink)
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.BICUBIC)
        paths.append(str(out_dir / f"mail{j:04d}.png"))
        im.save(paths[-1])
        if records is not None:
            records.append({"kind": crop, "polarity": "dark-on-light" if dark_on_light else "light-on-dark"})
    return paths, labels[idx], idx
