"""Pictures of handwritten numbers built from MNIST digits: one line of 2-12 digits, the ink gaps
between neighbours chosen (wide, close, touching or overlapping), written to files at test time.

Kinds (KINDS), after what people hand over:
- "gaps": ink gaps of 3-8 px at MNIST's scale (a digit is about 20 px tall), 2-6 digits;
- "close": gaps of 0-2 px, 2-6 digits;
- "touching": neighbours overlapping by 1-3 px, 2-3 digits;
- "zip": five digits, gaps from -1 to 6 px, as a ZIP code written on an envelope;
- "photo": 2-6 digits with gaps of 1-8 px, photographed: paper and ink colours, uneven light, turned
  up to 4 degrees, sensor noise, JPEG at quality 70, 640x480;
- "leaning": touching as "touching" is, every digit leaning alike as one writer's do (each made upright
  by its second moments, then sheared by one lean per number, mostly the top to the right).
The plain kinds are PNGs at 1-3x MNIST's scale in either polarity, with a margin of paper.

Each digit but the leaning kind's keeps its writer's slant and size (MNIST's own centring is undone: the digits stand on one
base line with a little jitter). TUNING and HELD_OUT of `testkit.realworld` say which digits to use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from edgemnist.training.fragments import ink_columns
from testkit.realworld import INKS, PAPERS, lighting

KINDS = ("gaps", "close", "touching", "zip", "photo", "leaning")
_GAPS = {"gaps": (3, 8), "close": (0, 2), "touching": (-3, -1), "zip": (-1, 6), "photo": (1, 8), "leaning": (-3, -1)}
_COUNTS = {"gaps": (2, 6), "close": (2, 6), "touching": (2, 3), "zip": (5, 5), "photo": (2, 6), "leaning": (2, 3)}
LEANS = (-0.45, 0.1)  # columns per row; negative: the top to the right of the foot, as most writers lean


def _sheared(digit: np.ndarray, k: float, row: float) -> np.ndarray:
    """A 28x28 uint8 digit with each row moved k columns per row below `row` to the left (k < 0: right)."""
    im = Image.fromarray(digit).transform((28, 28), Image.Transform.AFFINE, (1, k, -k * row, 0, 1, 0), Image.Resampling.BILINEAR)
    return np.asarray(im)


def lean_alike(digits: list[np.ndarray], lean: float) -> list[np.ndarray]:
    """Digits of different writers -> each upright (its ink's covariance of column and row taken off)
    and then leaning by `lean` columns per row about the frame's middle, as one writer's digits do."""
    rows, cols = np.mgrid[0:28, 0:28].astype(np.float64)
    out = []
    for d in digits:
        w = d.astype(np.float64) / max(float(d.sum()), 1.0)
        my, mx = float((w * rows).sum()), float((w * cols).sum())
        skew = float((w * (cols - mx) * (rows - my)).sum()) / max(float((w * (rows - my) ** 2).sum()), 1e-9)
        out.append(_sheared(_sheared(d, skew, my), -lean, 14.0))
    return out


def compose(digits: list[np.ndarray], gaps: list[int], rng: np.random.Generator) -> tuple[np.ndarray, list[list[int]]]:
    """28x28 uint8 digits (light on dark) side by side, `gaps[i]` px of paper between the ink of digit i
    and i+1 (negative: they overlap), each moved up or down by up to 2 px -> (float32 ink in [0, 1] with
    a 4-px margin, each digit's ink box as [x, y, w, h])."""
    cut = [ink_columns(d) for d in digits]
    lefts = [0]
    for prev, gap in zip(cut, gaps):
        lefts.append(lefts[-1] + prev.shape[1] + gap)
    shifts = rng.integers(-2, 3, len(cut))
    width = max(left + c.shape[1] for left, c in zip(lefts, cut))
    canvas = np.zeros((28 + 12, width + 8), np.float32)
    boxes = []
    for left, c, dy in zip(lefts, cut, shifts.tolist()):
        top, x0 = 6 + dy, 4 + left
        region = canvas[top : top + 28, x0 : x0 + c.shape[1]]
        np.maximum(region, c, out=region)
        rows = np.flatnonzero(c.max(1) > 40 / 255)
        boxes.append([x0, top + int(rows[0]), c.shape[1], int(rows[-1] - rows[0] + 1)])
    return canvas, boxes


def _plain(ink: np.ndarray, rng: np.random.Generator, boxes: list[list[int]], record: dict) -> Image.Image:
    """Gray PNG at 1-3x, either polarity, a margin of 2-12 px at MNIST's scale."""
    scale = int(rng.integers(1, 4))
    m = int(rng.integers(2, 13))
    ink = np.pad(ink, m)
    for b in boxes:
        b[0] += m
        b[1] += m
    im = Image.fromarray(np.round(ink * 255).astype(np.uint8), mode="L")
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.BICUBIC)
        for b in boxes:
            b[:] = [v * scale for v in b]
    dark_on_light = bool(rng.random() < 0.5)
    record |= {"scale": scale, "polarity": "dark-on-light" if dark_on_light else "light-on-dark"}
    return Image.eval(im, lambda v: 255 - v) if dark_on_light else im


def _photo(ink: np.ndarray, rng: np.random.Generator, boxes: list[list[int]], record: dict) -> Image.Image:
    """The number on paper in a 640x480 photo: 50-85% of the width, uneven light, turned up to 4
    degrees, noise; the boxes follow the scale and placement (not the turn)."""
    w, h = 640, 480
    scale = min(w * rng.uniform(0.5, 0.85) / ink.shape[1], h * 0.6 / ink.shape[0])
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    big = Image.fromarray(np.round(ink * 255).astype(np.uint8), mode="L").resize(size, Image.Resampling.BICUBIC)
    angle = float(rng.uniform(-4, 4))
    x0, y0 = int(rng.integers(0, w - size[0] + 1)), int(rng.integers(0, h - size[1] + 1))
    canvas = Image.new("L", (w, h), 0)
    canvas.paste(big, (x0, y0))
    canvas = canvas.rotate(angle, resample=Image.Resampling.BILINEAR, center=(x0 + size[0] / 2, y0 + size[1] / 2))
    mask = np.asarray(canvas, np.float32)[..., None] / 255.0
    paper = np.array(PAPERS[rng.integers(len(PAPERS))], np.float32)
    ink_rgb = np.array(INKS[rng.integers(4)], np.float32)  # the darker inks: red or grey pencil under shade is unreadable
    img = (paper * (1 - mask) + ink_rgb * mask) * lighting(rng, h, w)
    img += rng.normal(0, rng.uniform(1, 6), img.shape)
    for b in boxes:
        b[:] = [round(x0 + b[0] * scale), round(y0 + b[1] * scale), round(b[2] * scale), round(b[3] * scale)]
    record |= {"angle": round(angle, 2), "scale": round(scale, 2), "polarity": "dark-on-light"}
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="RGB")


def render(digits: list[np.ndarray], kind: str, rng: np.random.Generator, out_base: Path,
           record: dict | None = None) -> Path:
    """One number picture of `kind` from MNIST digits -> its file; `record` gets the gaps, the boxes
    (x, y, w, h in the file's pixels) and the style."""
    record = {} if record is None else record
    lo, hi = _GAPS[kind]
    gaps = rng.integers(lo, hi + 1, len(digits) - 1).tolist()
    record |= {"kind": kind, "gaps": gaps}
    if kind == "leaning":
        record["lean"] = round(float(rng.uniform(*LEANS)), 3)
        digits = lean_alike(digits, record["lean"])
    ink, boxes = compose(digits, gaps, rng)
    if kind == "photo":
        path = out_base.with_suffix(".jpg")
        _photo(ink, rng, boxes, record).save(path, quality=70)
    else:
        path = out_base.with_suffix(".png")
        _plain(ink, rng, boxes, record).save(path)
    record["boxes"] = boxes
    return path


def build(images: np.ndarray, labels: np.ndarray, n: int, out_dir: Path, kind: str, seed: int = 0,
          part: slice = slice(None), records: list | None = None) -> tuple[list[str], list[str]]:
    """n number pictures of one kind from a seeded sample of one slice of the digits: (paths, the
    numbers they show as strings); `records` receives each picture's gaps, boxes and style."""
    rng = np.random.default_rng(seed)
    pool = np.arange(len(images))[part]
    lo, hi = _COUNTS[kind]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, numbers = [], []
    for j in range(n):
        idx = rng.choice(pool, size=int(rng.integers(lo, hi + 1)), replace=False)
        record: dict = {}
        paths.append(str(render([images[i] for i in idx], kind, rng, out_dir / f"{kind}{j:04d}", record)))
        numbers.append("".join(str(int(labels[i])) for i in idx))
        if records is not None:
            records.append(record)
    return paths, numbers
