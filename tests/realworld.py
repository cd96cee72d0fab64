"""Render MNIST test digits the way people produce digits: dark ink on white or cream paper, larger
canvases, off-centre, thicker/thinner strokes, slight rotation, noise, JPEG compression, RGBA with
transparency. Written to files at test time (MNIST itself is never committed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

PAPERS = [(255, 255, 255), (246, 240, 222), (235, 232, 225)]
INKS = [(10, 10, 10), (25, 30, 80), (60, 60, 60)]


def render(digit: np.ndarray, rng: np.random.Generator, out_base: Path) -> Path:
    """One 28x28 uint8 MNIST digit -> one image file in a random real-world style."""
    side = int(rng.integers(100, 601))
    digit_h = int(side * rng.uniform(0.3, 0.75))
    ink = Image.fromarray(digit, mode="L").resize((digit_h, digit_h), Image.Resampling.BICUBIC)
    stroke = rng.choice(["thin", "normal", "thick"])
    k = max(3, (digit_h // 40) | 1)
    if stroke == "thick":
        ink = ink.filter(ImageFilter.MaxFilter(k))
    elif stroke == "thin":
        ink = ink.filter(ImageFilter.MinFilter(k))
    ink = ink.rotate(float(rng.uniform(-10, 10)), resample=Image.Resampling.BILINEAR, expand=True)
    canvas_mask = Image.new("L", (side, side), 0)
    x = int(rng.integers(0, max(1, side - ink.width)))
    y = int(rng.integers(0, max(1, side - ink.height)))
    canvas_mask.paste(ink, (x, y))
    mask = np.asarray(canvas_mask, np.float32) / 255.0
    style = rng.choice(["png", "jpeg", "rgba", "webp"], p=[0.3, 0.35, 0.2, 0.15])
    ink_rgb = np.array(INKS[rng.integers(len(INKS))], np.float32)
    if style == "rgba":
        rgba = np.zeros((side, side, 4), np.uint8)
        rgba[..., :3] = ink_rgb.astype(np.uint8)
        rgba[..., 3] = np.round(mask * 255).astype(np.uint8)
        path = out_base.with_suffix(".png")
        Image.fromarray(rgba, mode="RGBA").save(path)
        return path
    paper = np.array(PAPERS[rng.integers(len(PAPERS))], np.float32)
    img = paper * (1 - mask[..., None]) + ink_rgb * mask[..., None]
    img += rng.normal(0, rng.uniform(2, 12), img.shape)  # sensor noise / paper texture
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="RGB")
    if style == "jpeg":
        path = out_base.with_suffix(".jpg")
        im.save(path, quality=int(rng.integers(30, 90)))
    elif style == "webp":
        path = out_base.with_suffix(".webp")
        im.save(path, quality=int(rng.integers(40, 90)))
    else:
        path = out_base.with_suffix(".png")
        im.save(path)
    return path


def build(images: np.ndarray, labels: np.ndarray, n: int, out_dir: Path, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """n rendered files from a seeded sample of the given digits: (paths, labels, indices)."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(images), size=n, replace=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [str(render(images[i], rng, out_dir / f"digit{j:04d}")) for j, i in enumerate(idx)]
    return paths, labels[idx], idx
