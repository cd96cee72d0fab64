"""Pieces of a line of digits that are not one whole digit, drawn for training.  [train side]

The number reader (segment.py) lets the model score every candidate piece of a line. A model trained
on whole digits alone reads two touching digits as one sure digit (a touching 41 as a sure 4), and a
cut a little off as a poor digit. `render(images, labels, n, seed)` makes, from MNIST training digits,
framed as segment frames a piece (preprocess.fit_frame):
- "pair": two digits side by side, 3 px apart to 3 px overlapping, framed as one: no digit;
- "sliver": a digit with 1-4 px of its neighbour's edge beside it (a cut a little off): that digit.
"No digit" is the label NO_DIGIT: training gives it a uniform target, so the model spreads its
probability over the ten classes and the piece scores low. Parts of one digit (half a 0) taught as no
digit too cost tight crops of real digits 0.1-0.4 pp (docs/benchmarks.md): they are left out.
"""

from __future__ import annotations

import numpy as np

from edgemnist.preprocess import fit_frame

NO_DIGIT = -1
SHARES = {"pair": 0.6, "sliver": 0.4}


def ink_columns(digit: np.ndarray) -> np.ndarray:
    """A 28x28 uint8 digit -> float ink in [0, 1] cut to its inked columns (rows kept: neighbours
    share a frame; a digit with no ink stays whole)."""
    cols = np.flatnonzero(digit.max(0) > 40)
    cut = digit[:, cols[0] : cols[-1] + 1] if len(cols) else digit
    return cut.astype(np.float32) / 255.0


def _side_by_side(a: np.ndarray, b: np.ndarray, gap: int) -> tuple[np.ndarray, int]:
    """a and b on one canvas, `gap` px of paper between their ink (negative: overlap) -> (canvas, b's first column)."""
    start = max(0, a.shape[1] + gap)
    canvas = np.zeros((28, max(a.shape[1], start + b.shape[1])), np.float32)
    canvas[:, : a.shape[1]] = a
    np.maximum(canvas[:, start : start + b.shape[1]], b, out=canvas[:, start : start + b.shape[1]])
    return canvas, start


def _one(kind: str, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One fragment's ink."""
    if kind == "pair":
        return _side_by_side(a, b, int(rng.integers(-3, 4)))[0]
    gap, k = int(rng.integers(-2, 3)), int(rng.integers(1, 5))  # sliver: a, and k columns of b's near edge
    if rng.random() < 0.5:  # b on the right
        canvas, start = _side_by_side(a, b, gap)
        return canvas[:, : max(a.shape[1], start + k)]
    canvas, start = _side_by_side(b, a, gap)  # b on the left
    return canvas[:, max(0, min(start, b.shape[1] - k)) :]


def render(images: np.ndarray, labels: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n fragments of the given digits -> (uint8 [n, 28, 28] in MNIST's framing, labels: the digit for a
    sliver, NO_DIGIT for a pair)."""
    rng = np.random.default_rng(seed + 7919)  # not the variants' stream
    kinds = list(SHARES)
    out, out_labels = [], []
    while len(out) < n:
        kind = kinds[rng.choice(len(kinds), p=list(SHARES.values()))]
        i, j = rng.integers(0, len(images), 2)
        if kind != "sliver" and rng.random() < 0.5:
            i, j = j, i
        piece = _one(kind, ink_columns(images[i]), ink_columns(images[j]), rng)
        if not (piece > 0.15).any():
            continue
        out.append(np.round(fit_frame(np.where(piece > 0.15, piece, 0.0)) * 255).astype(np.uint8))
        out_labels.append(int(labels[i]) if kind == "sliver" else NO_DIGIT)
    return np.stack(out), np.array(out_labels, np.int64)
