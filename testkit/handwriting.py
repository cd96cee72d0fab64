"""Digits drawn as pen strokes in the handwriting variants MNIST's writers rarely used: a 1 with a
flag and a foot, a 7 with a crossbar, an open-top 4, a 9 with a straight tail, a 2 with a loop, next
to the common forms of every digit, each in thin pen, normal pen and thick marker, upright or slanted.
Written to files at test time, as people hand them over: dark ink on light paper, a margin, PNG.

This is a measuring set: nothing in edgemnist's training draws from it. Each picture's strokes are
warped smoothly, shifted and turned a little, so no two are alike (seeded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> list[tuple[float, float]]:
    """Points on an ellipse from angle a0 to a1 (degrees; 0 = right, 90 = down)."""
    t = np.radians(np.linspace(a0, a1, n))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in t]


# Each form: a list of strokes, each stroke a polyline in a unit box (x right, y down).
FORMS: dict[str, tuple[int, list[list[tuple[float, float]]]]] = {
    "0": (0, [_arc(0.5, 0.5, 0.3, 0.42, -90, 270, 40)]),
    "1": (1, [[(0.52, 0.08), (0.5, 0.92)]]),
    "1 with a flag": (1, [[(0.3, 0.3), (0.55, 0.08), (0.55, 0.92)]]),
    "1 with a flag and a foot": (1, [[(0.3, 0.3), (0.55, 0.08), (0.55, 0.92)], [(0.28, 0.92), (0.82, 0.92)]]),
    "2": (2, [_arc(0.5, 0.32, 0.28, 0.24, 190, 360, 16) + [(0.72, 0.45), (0.22, 0.9), (0.82, 0.9)]]),
    "2 with a loop": (2, [_arc(0.5, 0.32, 0.28, 0.24, 190, 360, 16) + [(0.72, 0.45), (0.3, 0.82)]
                          + _arc(0.3, 0.78, 0.1, 0.1, 90, 450, 12)[::-1] + [(0.4, 0.9), (0.84, 0.88)]]),
    "3": (3, [_arc(0.48, 0.3, 0.26, 0.2, 200, 450, 18), _arc(0.48, 0.7, 0.3, 0.22, -90, 160, 18)]),
    "4": (4, [[(0.62, 0.08), (0.18, 0.62), (0.85, 0.62)], [(0.66, 0.3), (0.66, 0.94)]]),
    "open-top 4": (4, [[(0.25, 0.08), (0.2, 0.6), (0.85, 0.6)], [(0.68, 0.1), (0.68, 0.94)]]),
    "5": (5, [[(0.78, 0.1), (0.3, 0.1), (0.26, 0.45)] + _arc(0.48, 0.65, 0.28, 0.24, -120, 150, 18)]),
    "6": (6, [_arc(0.55, 0.45, 0.3, 0.38, -70, -180, 12)[::-1][::-1] + _arc(0.5, 0.7, 0.24, 0.2, 180, 540, 24)]),
    "7": (7, [[(0.18, 0.1), (0.82, 0.1), (0.4, 0.92)]]),
    "7 with a crossbar": (7, [[(0.18, 0.1), (0.82, 0.1), (0.4, 0.92)], [(0.35, 0.5), (0.8, 0.5)]]),
    "8": (8, [_arc(0.5, 0.28, 0.22, 0.19, 90, 450, 24) + _arc(0.5, 0.7, 0.27, 0.22, -90, 270, 28)]),
    "9": (9, [_arc(0.5, 0.3, 0.25, 0.21, 0, 360, 26) + [(0.74, 0.55), (0.62, 0.92)]]),
    "9 with a straight tail": (9, [_arc(0.5, 0.3, 0.25, 0.21, 0, 360, 26) + [(0.75, 0.3), (0.75, 0.94)]]),
}
PENS = {"thin pen": 0.04, "pen": 0.07, "thick marker": 0.14}  # stroke width, a share of the digit's height


def render(form: str, rng: np.random.Generator, out_base: Path, record: dict | None = None) -> tuple[Path, int]:
    """One picture of `form` (a key of FORMS) in a random pen, slant, size and jitter -> (path, label)."""
    record = {} if record is None else record
    label, strokes = FORMS[form]
    pen = str(rng.choice(list(PENS), p=[0.3, 0.45, 0.25]))
    slant = float(rng.uniform(-0.35, 0.35)) if rng.random() < 0.6 else 0.0
    record |= {"form": form, "pen": pen, "slant": round(slant, 2)}
    tall = int(rng.integers(48, 200))
    wide = tall * rng.uniform(0.6, 0.95)
    margin = int(tall * rng.uniform(0.1, 0.4))
    side_w, side_h = int(wide + 2 * margin + abs(slant) * tall), tall + 2 * margin
    scale = 4  # drawn 4x larger, then reduced: anti-aliased ink
    im = Image.new("L", (side_w * scale, side_h * scale), int(rng.integers(215, 256)))
    draw = ImageDraw.Draw(im)
    width = max(1.0, PENS[pen] * tall * rng.uniform(0.8, 1.25)) * scale
    ink = int(rng.integers(0, 80))
    ax, ay, px_, py_ = rng.uniform(0, 0.04), rng.uniform(0, 0.04), rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)
    turn = np.radians(rng.uniform(-8, 8))
    for stroke in strokes:
        points = []
        dx, dy = rng.normal(0, 0.015, 2)  # each stroke a little off where the template puts it
        for x, y in stroke:
            x, y = x + ax * np.sin(2 * np.pi * y + px_) + dx, y + ay * np.sin(2 * np.pi * x + py_) + dy  # a smooth warp
            x, y = 0.5 + (x - 0.5) * np.cos(turn) - (y - 0.5) * np.sin(turn), 0.5 + (x - 0.5) * np.sin(turn) + (y - 0.5) * np.cos(turn)
            px = margin + x * wide + slant * (1 - y) * tall + (abs(slant) * tall if slant < 0 else 0)
            points.append((px * scale, (margin + y * tall) * scale))
        draw.line(points, fill=ink, width=int(round(width)), joint="curve")
        r = width / 2
        for px, py in (points[0], points[-1]):  # round pen ends
            draw.ellipse((px - r, py - r, px + r, py + r), fill=ink)
    im = im.reduce(scale)
    path = out_base.with_suffix(".png")
    im.save(path)
    return path, label


def build(n: int, out_dir: Path, seed: int = 0, forms: tuple[str, ...] | None = None,
          records: list | None = None) -> tuple[list[str], np.ndarray]:
    """n pictures, forms drawn in turn from `forms` (default: every form), seeded: (paths, labels)."""
    rng = np.random.default_rng(seed)
    forms = tuple(FORMS) if forms is None else forms
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, labels = [], []
    for j in range(n):
        rec: dict = {}
        path, label = render(forms[j % len(forms)], rng, out_dir / f"hand{j:04d}", rec)
        paths.append(str(path))
        labels.append(label)
        if records is not None:
            records.append(rec)
    return paths, np.array(labels)
