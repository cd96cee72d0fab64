"""Render MNIST test digits the way people produce digits: photos and scans of paper, and canvases.
Written to files at test time (MNIST itself is never committed).

Each image draws independently from: paper colour and texture (white, cream, grey, yellow, blue,
ruled lines, fibre noise), ink colour (black, blue, grey pencil, red) and pen width, margins and
off-centre placement, rotation and perspective, uneven lighting (a gradient and a vignette), blur,
sensor noise, and the file (PNG, JPEG at quality 20-90, WebP, RGBA with transparency, light ink on a
dark board or screen).

Two slices of the test set: TUNING (test images 0-4999) is the one preprocessing was tuned on;
HELD_OUT (test images 5000-9999) is only measured (benchmarks/realworld_accuracy.py --slice held-out).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

TUNING, HELD_OUT = slice(0, 5000), slice(5000, 10000)
PAPERS = [(255, 255, 255), (246, 240, 222), (235, 232, 225), (250, 243, 190), (222, 232, 245), (205, 205, 200)]
INKS = [(10, 10, 10), (25, 30, 80), (20, 50, 160), (70, 70, 75), (110, 110, 115), (150, 20, 25)]
BOARDS = [(20, 20, 20), (30, 60, 45), (15, 25, 60)]  # light ink on these: a blackboard, a dark screen


def _ink_mask(digit: np.ndarray, rng: np.random.Generator, side: int, style: dict) -> np.ndarray:
    """The digit's ink coverage in [0, 1] on a side x side canvas: sized, stroked, rotated, placed."""
    digit_h = max(32, int(side * rng.uniform(0.25, 0.8)))  # smaller than MNIST's own 28 px, nobody can read it
    ink = Image.fromarray(digit, mode="L").resize((digit_h, digit_h), Image.Resampling.BICUBIC)
    k = max(3, (digit_h // 40) | 1)
    stroke = rng.choice(["thin", "normal", "thick", "very thick"], p=[0.25, 0.4, 0.25, 0.1])
    if stroke == "thin" and digit_h < 64:  # a 3-px erosion of a small digit leaves nothing a person could read
        stroke = "normal"
    style |= {"stroke": str(stroke), "digit_px": digit_h}
    if stroke == "thick":
        ink = ink.filter(ImageFilter.MaxFilter(k))
    elif stroke == "very thick":
        ink = ink.filter(ImageFilter.MaxFilter(min(2 * k + 1, 9)))
    elif stroke == "thin":
        ink = ink.filter(ImageFilter.MinFilter(k))
    ink = ink.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BILINEAR, expand=True)
    canvas = Image.new("L", (side, side), 0)
    x = int(rng.integers(0, max(1, side - ink.width)))
    y = int(rng.integers(0, max(1, side - ink.height)))
    canvas.paste(ink, (x, y))
    style["perspective"] = bool(rng.random() < 0.4)
    if style["perspective"]:  # the page photographed at an angle
        d = side * 0.08
        quad = [float(v) for v in np.array([0, 0, 0, side, side, side, side, 0]) + rng.uniform(-d, d, 8)]
        canvas = canvas.transform((side, side), Image.Transform.QUAD, quad, Image.Resampling.BILINEAR)
    return np.asarray(canvas, np.float32) / 255.0


def _paper(rng: np.random.Generator, side: int) -> np.ndarray:
    paper = np.array(PAPERS[rng.integers(len(PAPERS))], np.float32) * np.ones((side, side, 1), np.float32)
    if rng.random() < 0.3:  # fibre texture: low-frequency noise
        grain = Image.fromarray((rng.random((side, side)) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(side / 60))
        paper += (np.asarray(grain, np.float32)[..., None] - 127.5) * rng.uniform(0.2, 0.6)
    if rng.random() < 0.2:  # ruled paper: faint blue lines
        gap = int(side * rng.uniform(0.12, 0.2))
        for y in range(int(rng.integers(0, gap)), side, gap):
            paper[y : y + max(1, side // 200)] = paper[y : y + max(1, side // 200)] * 0.55 + np.array([150, 180, 230]) * 0.45
    return paper


def _lighting(rng: np.random.Generator, side: int) -> np.ndarray:
    """A multiplicative light field: one side darker (a shadow, a lamp), optionally a vignette."""
    yy, xx = np.mgrid[0:side, 0:side] / max(side - 1, 1)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) + 0.5
    light = 1.0 - rng.uniform(0.0, 0.35) * ramp
    if rng.random() < 0.4:
        light *= 1.0 - rng.uniform(0.1, 0.3) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) * 2
    return light.astype(np.float32)[..., None]


def render(digit: np.ndarray, rng: np.random.Generator, out_base: Path, record: dict | None = None) -> Path:
    """One 28x28 uint8 MNIST digit -> one image file in a random real-world style (described in `record`)."""
    record = {} if record is None else record
    side = int(rng.integers(80, 720))
    mask = _ink_mask(digit, rng, side, record)
    style = rng.choice(["photo", "scan", "rgba", "board"], p=[0.5, 0.3, 0.1, 0.1])
    record["kind"] = str(style)
    ink_rgb = np.array(INKS[rng.integers(len(INKS))], np.float32)
    if style == "rgba":  # a canvas export: ink on transparency
        rgba = np.zeros((side, side, 4), np.uint8)
        rgba[..., :3] = ink_rgb.astype(np.uint8)
        rgba[..., 3] = np.round(mask * 255).astype(np.uint8)
        path = out_base.with_suffix(".png")
        Image.fromarray(rgba, mode="RGBA").save(path)
        return path
    if style == "board":
        paper = np.array(BOARDS[rng.integers(len(BOARDS))], np.float32) * np.ones((side, side, 1), np.float32)
        ink_rgb = np.array([235, 235, 225], np.float32) * rng.uniform(0.75, 1.0)
    else:
        paper = _paper(rng, side)
    img = paper * (1 - mask[..., None]) + ink_rgb * mask[..., None]
    if style == "photo":
        img *= _lighting(rng, side)
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="RGB")
    record["blur"] = bool(rng.random() < 0.35)
    if record["blur"]:  # out of focus, or a soft scan
        im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.4, 1.6)) * side / 300))
    noisy = np.asarray(im, np.float32) + rng.normal(0, rng.uniform(1, 10), (side, side, 3))
    im = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), mode="RGB")
    fmt = rng.choice(["png", "jpeg", "webp"], p=[0.3, 0.5, 0.2])
    record["format"] = str(fmt)
    path = out_base.with_suffix({"png": ".png", "jpeg": ".jpg", "webp": ".webp"}[fmt])
    if fmt == "png":
        im.save(path)
    else:
        im.save(path, quality=int(rng.integers(20, 90)))
    return path


def build(images: np.ndarray, labels: np.ndarray, n: int, out_dir: Path, seed: int = 0,
          part: slice = TUNING, records: list | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """n rendered files from a seeded sample of one slice of the digits: (paths, labels, indices);
    `records` receives each image's style."""
    rng = np.random.default_rng(seed)
    idx = np.arange(len(images))[part]
    idx = rng.choice(idx, size=n, replace=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    styles = [{} for _ in idx]
    paths = [str(render(images[i], rng, out_dir / f"digit{j:04d}", styles[j])) for j, i in enumerate(idx)]
    if records is not None:
        records.extend(styles)
    return paths, labels[idx], idx
