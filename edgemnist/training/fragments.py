"""Two touching digits framed as one, drawn for training as "no digit".  [train side]

The number reader (segment.py) lets the model score every candidate piece of a line. A model trained
on whole digits alone reads two touching digits as one sure digit (a touching 41 as a sure 4), so the
reader keeps too few pieces and says "sure" where it is wrong. `render(images, n, seed)` makes,
from MNIST training digits, pairs side by side (3 px apart to 3 px overlapping) framed as segment
frames a piece (preprocess.fit_frame), with the label NO_DIGIT: training gives it a uniform target, so
the model spreads its probability over the ten classes and such a piece scores low. Measured
(docs/benchmarks.md, Numbers): digits with a neighbour's sliver taught as that digit, or parts of one
digit taught as no digit, cost single digits more than they gave.
"""

from __future__ import annotations

import numpy as np

from edgemnist.preprocess import fit_frame

NO_DIGIT = -1


def ink_columns(digit: np.ndarray) -> np.ndarray:
    """A 28x28 uint8 digit -> float ink in [0, 1] cut to its inked columns (rows kept: neighbours
    share a frame; a digit with no ink stays whole)."""
    cols = np.flatnonzero(digit.max(0) > 40)
    cut = digit[:, cols[0] : cols[-1] + 1] if len(cols) else digit
    return cut.astype(np.float32) / 255.0


def _side_by_side(a: np.ndarray, b: np.ndarray, gap: int) -> np.ndarray:
    """a and b on one canvas, `gap` px of paper between their ink (negative: overlap)."""
    start = max(0, a.shape[1] + gap)
    canvas = np.zeros((28, max(a.shape[1], start + b.shape[1])), np.float32)
    canvas[:, : a.shape[1]] = a
    np.maximum(canvas[:, start : start + b.shape[1]], b, out=canvas[:, start : start + b.shape[1]])
    return canvas


def render(images: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n touching pairs of the given digits -> (uint8 [n, 28, 28] in MNIST's framing, NO_DIGIT each)."""
    rng = np.random.default_rng(seed + 7919)  # not the variants' stream
    out: list[np.ndarray] = []
    while len(out) < n:
        i, j = rng.integers(0, len(images), 2)
        piece = _side_by_side(ink_columns(images[i]), ink_columns(images[j]), int(rng.integers(-3, 4)))
        if not (piece > 0.15).any():
            continue
        out.append(np.round(fit_frame(np.where(piece > 0.15, piece, 0.0)) * 255).astype(np.uint8))
    return np.stack(out), np.full(n, NO_DIGIT, np.int64)
