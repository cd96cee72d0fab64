"""Pen-stroke digits in the handwriting forms MNIST's writers rarely used, drawn for training.  [train side]

MNIST's 1s are almost all a bare stroke, its 7s have no crossbar, its 4s are closed and its 9s curl:
a model trained on MNIST alone reads a 1 with a flag and a foot as an 8 or a 4 (other writers' digits).
`render(n, seed)` draws n digits as pen strokes with random shapes -- a 1 with a flag of any
length and angle, with or without a foot, a 7 with a crossbar, an open-top 4, a 9 with a straight
tail, a 2 with a loop, and the plain form of every digit so that the drawing style says nothing about
the label -- in MNIST's framing: the ink's box scaled to fit 20x20, the centre of mass at the centre
of 28x28, grey anti-aliased edges. Training mixes them into the MNIST training set (`TrainConfig.variants`).

Every shape is random (a flag's length, a loop's size, where a crossbar sits), not a template, and
the pen is a distance field; testkit/handwriting.py, which measures these forms, is a separate drawing
that training never reads.
"""

from __future__ import annotations

import math

import numpy as np
import torch

Stroke = list[tuple[float, float]]


def _arc(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> Stroke:
    """Points on an ellipse from angle a0 to a1 (degrees; 0 = right, 90 = down), radii jittered."""
    rx, ry = rx * rng.uniform(0.85, 1.15), ry * rng.uniform(0.85, 1.15)
    t = np.radians(np.linspace(a0, a1, max(6, int(abs(a1 - a0) / 15))))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in t]


def _one(rng: np.random.Generator, flag: bool, foot: bool) -> list[Stroke]:
    x = rng.uniform(0.45, 0.6)
    strokes = [[(x, 0.05), (x + rng.normal(0, 0.03), 0.95)]]
    if flag:  # from down-left up to the top of the stem: short and steep to long and flat
        length, angle = rng.uniform(0.15, 0.45), math.radians(rng.uniform(15, 60))
        strokes[0].insert(0, (x - length * math.cos(angle), 0.05 + length * math.sin(angle)))
    if foot:
        half = rng.uniform(0.15, 0.3)
        strokes.append([(x - half, 0.95), (x + half * rng.uniform(0.8, 1.2), 0.95 + rng.normal(0, 0.02))])
    return strokes


def _seven(rng: np.random.Generator, crossbar: bool) -> list[Stroke]:
    top, foot_x = rng.uniform(0.05, 0.1), rng.uniform(0.3, 0.55)
    strokes = [[(0.15, top + rng.normal(0, 0.03)), (0.85, top), (foot_x, 0.95)]]
    if crossbar:
        y = rng.uniform(0.45, 0.6)
        x = 0.85 + (foot_x - 0.85) * (y - top) / (0.95 - top)  # where the bar crosses the stem
        strokes.append([(x - rng.uniform(0.15, 0.3), y), (x + rng.uniform(0.12, 0.25), y + rng.normal(0, 0.02))])
    return strokes


def _four(rng: np.random.Generator, open_top: bool) -> list[Stroke]:
    bar, stem = rng.uniform(0.55, 0.68), rng.uniform(0.6, 0.72)
    if open_top:
        left = [(rng.uniform(0.15, 0.3), 0.05), (rng.uniform(0.12, 0.25), bar), (0.88, bar)]
        return [left, [(stem, rng.uniform(0.05, 0.2)), (stem, 0.95)]]
    return [[(stem - 0.05, 0.05), (0.12, bar), (0.88, bar)], [(stem, rng.uniform(0.25, 0.4)), (stem, 0.95)]]


def _nine(rng: np.random.Generator, straight: bool) -> list[Stroke]:
    ry = rng.uniform(0.16, 0.24)
    loop = _arc(rng, 0.48, 0.05 + ry, 0.28, ry, 0, 360)
    right = loop[0][0]
    tail = [(right, 0.05 + ry), (right + rng.normal(0, 0.02), 0.95)] if straight else \
           [(right, 0.05 + ry), (right - 0.05, 0.6), (rng.uniform(0.3, 0.5), 0.95)]
    return [loop + tail]


def _two(rng: np.random.Generator, loop: bool) -> list[Stroke]:
    top = _arc(rng, 0.5, 0.3, 0.3, 0.22, 190, 360) + [(0.76, 0.42)]
    if loop:
        r = rng.uniform(0.07, 0.13)
        body = [(0.3, 0.95 - 2 * r)] + _arc(rng, 0.3, 0.95 - r, r, r, -90, -450)[1:] + [(0.85, 0.93)]
        return [top + body]
    return [top + [(0.15, 0.93), (0.85, 0.93)]]


def _plain(rng: np.random.Generator, digit: int) -> list[Stroke]:
    if digit == 0:
        return [_arc(rng, 0.5, 0.5, 0.32, 0.45, -90, 275)]
    if digit == 3:
        return [_arc(rng, 0.5, 0.28, 0.27, 0.23, 200, 450) + _arc(rng, 0.5, 0.72, 0.3, 0.23, -90, 160)]
    if digit == 5:
        return [[(0.8, 0.05), (0.3, 0.05), (0.25, 0.45)] + _arc(rng, 0.5, 0.68, 0.3, 0.27, -130, 150)]
    if digit == 6:
        return [[(0.72, 0.05), (0.4, 0.35)] + _arc(rng, 0.5, 0.7, 0.28, 0.25, 190, 540)]
    return [_arc(rng, 0.5, 0.27, 0.24, 0.22, 90, 450) + _arc(rng, 0.5, 0.72, 0.3, 0.23, -90, 270)]  # 8


# label -> (share of the drawn digits, shape); the plain forms keep the drawing style from giving the label away
FORMS = [
    (1, 0.12, lambda r: _one(r, flag=True, foot=True)),
    (1, 0.12, lambda r: _one(r, flag=True, foot=False)),
    (1, 0.03, lambda r: _one(r, flag=False, foot=False)),
    (7, 0.08, lambda r: _seven(r, crossbar=True)),
    (7, 0.06, lambda r: _seven(r, crossbar=False)),
    (4, 0.08, lambda r: _four(r, open_top=True)),
    (4, 0.05, lambda r: _four(r, open_top=False)),
    (9, 0.07, lambda r: _nine(r, straight=True)),
    (9, 0.05, lambda r: _nine(r, straight=False)),
    (2, 0.06, lambda r: _two(r, loop=True)),
    (2, 0.04, lambda r: _two(r, loop=False)),
    *[(d, 0.048, lambda r, d=d: _plain(r, d)) for d in (0, 3, 5, 6, 8)],
]


def _pen(rng: np.random.Generator, strokes: list[Stroke]) -> tuple[np.ndarray, float]:
    """The strokes as segments [S, 4] after a slant, a turn and a smooth warp, in 28x28 pixels with the
    ink's box fitted into 20x20 and the centre of mass at the centre, as MNIST; the pen's width in pixels."""
    slant, turn = rng.uniform(-0.4, 0.4), math.radians(rng.uniform(-10, 10))
    aspect = rng.uniform(0.6, 1.0)
    ax, ay, px, py = *rng.uniform(0, 0.05, 2), *rng.uniform(0, 2 * math.pi, 2)
    segs = []
    for stroke in strokes:
        p = np.array(stroke, np.float64)
        p += rng.normal(0, 0.012, 2)
        x, y = p[:, 0], p[:, 1]
        x, y = x + ax * np.sin(2 * math.pi * y + px), y + ay * np.sin(2 * math.pi * x + py)
        x = (x - 0.5) * aspect + slant * (0.5 - y)
        y = y - 0.5
        x, y = x * math.cos(turn) - y * math.sin(turn), x * math.sin(turn) + y * math.cos(turn)
        p = np.stack([x, y], 1)
        segs.append(np.concatenate([p[:-1], p[1:]], 1))
    segs = np.concatenate(segs)
    width = rng.uniform(1.4, 4.5)  # pixels at 28x28: a fine pen to a marker
    pts = segs.reshape(-1, 2)
    lo, hi = pts.min(0), pts.max(0)
    scale = (20 - width) / max(hi - lo)
    length = np.hypot(segs[:, 2] - segs[:, 0], segs[:, 3] - segs[:, 1])
    mass = (length[:, None] * (segs[:, :2] + segs[:, 2:]) / 2).sum(0) / length.sum()  # the ink's centre of mass, near enough
    return (segs - np.tile(mass, 2)) * scale + 14, width


def _draw(segs: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Ink in [0, 1] on 28x28 for segments [N, S, 4] (padding far away) and widths [N]: a pen of that
    width with a 1.5-px soft edge, the distance to the nearest segment deciding each pixel."""
    centres = torch.arange(28.0) + 0.5
    px, py = centres.repeat(28), centres.repeat_interleave(28)  # [784], row-major
    ax, ay, bx, by = (segs[..., k, None] for k in range(4))  # [N, S, 1]
    dx, dy = bx - ax, by - ay
    rx, ry = px - ax, py - ay  # [N, S, 784]
    t = ((rx * dx + ry * dy) / (dx * dx + dy * dy).clamp_min(1e-9)).clamp_(0, 1)
    d2 = (rx - t * dx).square_() + (ry - t * dy).square_()
    d = d2.amin(1).sqrt_()  # [N, 784]
    return ((width[:, None] / 2 - d) / 1.5 + 0.5).clamp_(0, 1).view(-1, 28, 28)


def render(n: int, seed: int = 0, chunk: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """n digits in the forms above, seeded: (uint8 [n, 28, 28] light ink on black, as MNIST; labels [n])."""
    rng = np.random.default_rng(seed)
    shares = np.array([f[1] for f in FORMS])
    picks = rng.choice(len(FORMS), n, p=shares / shares.sum())
    images = np.zeros((n, 28, 28), np.uint8)
    for start in range(0, n, chunk):
        drawn = [_pen(rng, FORMS[k][2](rng)) for k in picks[start : start + chunk]]
        most = max(len(s) for s, _ in drawn)
        segs = torch.full((len(drawn), most, 4), -1e4, dtype=torch.float32)
        for i, (s, _) in enumerate(drawn):
            segs[i, : len(s)] = torch.from_numpy(s)
        width = torch.tensor([w for _, w in drawn], dtype=torch.float32)
        images[start : start + len(drawn)] = (_draw(segs, width) * 255).round().to(torch.uint8).numpy()
    return images, np.array([FORMS[k][0] for k in picks], np.uint8)
