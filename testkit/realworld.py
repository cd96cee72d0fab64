"""Render MNIST test digits the way people produce digits: photos and scans of paper, and canvases.
Written to files at test time (MNIST itself is never committed).

Each image draws independently from: paper colour and texture (white, cream, grey, yellow, blue,
ruled lines, fibre noise), ink colour (black, blue, grey pencil, red) and pen width, margins and
off-centre placement, rotation and perspective, uneven lighting (a gradient and a vignette), blur,
sensor noise, and the file (PNG, JPEG at quality 20-90, WebP, RGBA with transparency, light ink on a
dark board or screen).

`render_crop` makes the other half of what people hand over: crops. The ink touches one to four
edges (a tight crop, a digit filling the frame), tiny crops of 8-32 px (and such crops enlarged
blockily, as a screenshot zoom does), a cell cut from a form with parts of its box lines at the edges,
a piece of the neighbouring digit at the left or right edge; either polarity, the same inks, papers,
pens, noise and files as above.

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


def _ink_mask(digit: np.ndarray, rng: np.random.Generator, h: int, w: int, style: dict) -> np.ndarray:
    """The digit's ink coverage in [0, 1] on an h x w canvas: sized, stroked, rotated, placed."""
    side = min(h, w)
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
    canvas = Image.new("L", (w, h), 0)
    x = int(rng.integers(0, max(1, w - ink.width)))
    y = int(rng.integers(0, max(1, h - ink.height)))
    canvas.paste(ink, (x, y))
    style["perspective"] = bool(rng.random() < 0.4)
    if style["perspective"]:  # the page photographed at an angle
        d = side * 0.08
        quad = [float(v) for v in np.array([0, 0, 0, h, w, h, w, 0]) + rng.uniform(-d, d, 8)]
        canvas = canvas.transform((w, h), Image.Transform.QUAD, quad, Image.Resampling.BILINEAR)
    return np.asarray(canvas, np.float32) / 255.0


def _paper(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    side = min(h, w)
    paper = np.array(PAPERS[rng.integers(len(PAPERS))], np.float32) * np.ones((h, w, 1), np.float32)
    if rng.random() < 0.3:  # fibre texture: low-frequency noise
        grain = Image.fromarray((rng.random((h, w)) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(side / 60))
        paper += (np.asarray(grain, np.float32)[..., None] - 127.5) * rng.uniform(0.2, 0.6)
    if rng.random() < 0.2:  # ruled paper: faint blue lines
        gap = int(side * rng.uniform(0.12, 0.2))
        for y in range(int(rng.integers(0, gap)), h, gap):
            paper[y : y + max(1, side // 200)] = paper[y : y + max(1, side // 200)] * 0.55 + np.array([150, 180, 230]) * 0.45
    return paper


def lighting(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A multiplicative light field: one side darker (a shadow, a lamp), optionally a vignette."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yy, xx = yy / max(h - 1, 1), xx / max(w - 1, 1)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) + 0.5
    light = 1.0 - rng.uniform(0.0, 0.35) * ramp
    if rng.random() < 0.4:
        light *= 1.0 - rng.uniform(0.1, 0.3) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) * 2
    return light.astype(np.float32)[..., None]


def render(digit: np.ndarray, rng: np.random.Generator, out_base: Path, record: dict | None = None,
           size: tuple[int, int] | None = None, kind: str | None = None, fmt: str | None = None) -> Path:
    """One 28x28 uint8 MNIST digit -> one image file in a random real-world style (described in
    `record`): a square of 80-720 px unless `size` (width, height) is given; `kind` (photo, scan,
    rgba, board) and `fmt` (png, jpeg, webp) are drawn unless given."""
    record = {} if record is None else record
    w, h = size or (int(rng.integers(80, 720)),) * 2
    mask = _ink_mask(digit, rng, h, w, record)
    style = rng.choice(["photo", "scan", "rgba", "board"], p=[0.5, 0.3, 0.1, 0.1]) if kind is None else kind
    record["kind"] = str(style)
    ink_rgb = np.array(INKS[rng.integers(len(INKS))], np.float32)
    if style == "rgba":  # a canvas export: ink on transparency
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., :3] = ink_rgb.astype(np.uint8)
        rgba[..., 3] = np.round(mask * 255).astype(np.uint8)
        path = out_base.with_suffix(".png")
        Image.fromarray(rgba, mode="RGBA").save(path)
        return path
    if style == "board":
        paper = np.array(BOARDS[rng.integers(len(BOARDS))], np.float32) * np.ones((h, w, 1), np.float32)
        ink_rgb = np.array([235, 235, 225], np.float32) * rng.uniform(0.75, 1.0)
    else:
        paper = _paper(rng, h, w)
    img = paper * (1 - mask[..., None]) + ink_rgb * mask[..., None]
    if style == "photo":
        img *= lighting(rng, h, w)
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="RGB")
    record["blur"] = bool(rng.random() < 0.35)
    if record["blur"]:  # out of focus, or a soft scan
        im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.4, 1.6)) * min(h, w) / 300))
    noisy = np.asarray(im, np.float32) + rng.normal(0, rng.uniform(1, 10), (h, w, 3))
    im = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), mode="RGB")
    fmt = rng.choice(["png", "jpeg", "webp"], p=[0.3, 0.5, 0.2]) if fmt is None else fmt
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


CROP_KINDS = ("tight", "edges", "tiny", "blocky", "cell", "neighbour")


def _digit_ink(digit: np.ndarray, rng: np.random.Generator, size: int, style: dict) -> np.ndarray:
    """The digit's ink in [0, 1], `size` px tall before its crop, stroked and slightly rotated,
    cropped to the ink (every edge touches it)."""
    ink = Image.fromarray(digit, mode="L").resize((size, size), Image.Resampling.BICUBIC)
    k = max(3, (size // 40) | 1)
    stroke = str(rng.choice(["thin", "normal", "thick"], p=[0.2, 0.55, 0.25]) if size >= 64 else "normal")
    style["stroke"] = stroke
    if stroke == "thick":
        ink = ink.filter(ImageFilter.MaxFilter(k))
    elif stroke == "thin":
        ink = ink.filter(ImageFilter.MinFilter(k))
    ink = ink.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BILINEAR, expand=True)
    a = np.asarray(ink, np.float32) / 255.0
    rows, cols = np.flatnonzero(a.max(1) > 0.2), np.flatnonzero(a.max(0) > 0.2)
    return a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _cell(mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A form's cell around the ink: a little paper, then parts of the box's lines at the edges ->
    (the padded ink, the lines)."""
    h, w = mask.shape
    m = [int(rng.integers(1, max(2, h // 8))) for _ in range(4)]
    mask = np.pad(mask, ((m[0], m[1]), (m[2], m[3])))
    lines = np.zeros_like(mask)
    t = max(1, int(round(max(mask.shape) * rng.uniform(0.01, 0.03))))
    for side in rng.permutation(4)[: int(rng.integers(2, 5))]:
        length = slice(0, None) if rng.random() < 0.6 else slice(int(rng.integers(0, max(1, max(mask.shape) // 3))), None)
        if side == 0:
            lines[:t, length] = 1
        elif side == 1:
            lines[-t:, length] = 1
        elif side == 2:
            lines[length, :t] = 1
        else:
            lines[length, -t:] = 1
    return mask, lines


def _paint(mask: np.ndarray, lines: np.ndarray, rng: np.random.Generator, record: dict) -> Image.Image:
    """Ink and box lines on paper (or light ink on a board), with sensor noise -> an RGB picture."""
    light_on_dark = bool(rng.random() < 0.3)
    record["polarity"] = "light-on-dark" if light_on_dark else "dark-on-light"
    if light_on_dark:
        paper = np.array(BOARDS[rng.integers(len(BOARDS))], np.float32)
        ink_rgb = np.array([235, 235, 225], np.float32) * rng.uniform(0.75, 1.0)
    else:
        paper = np.array(PAPERS[rng.integers(len(PAPERS))], np.float32)
        ink_rgb = np.array(INKS[rng.integers(len(INKS))], np.float32)
    line_rgb = np.array([60, 60, 60] if not light_on_dark else [200, 200, 200], np.float32)
    img = paper * (1 - mask[..., None]) + ink_rgb * mask[..., None]
    img = img * (1 - lines[..., None]) + line_rgb * lines[..., None]
    noisy = img + rng.normal(0, rng.uniform(0, 6), img.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), mode="RGB")


def render_crop(digit: np.ndarray, rng: np.random.Generator, out_base: Path, record: dict | None = None,
                neighbour: np.ndarray | None = None, kind: str | None = None) -> Path:
    """One 28x28 uint8 MNIST digit -> one cropped image file (see CROP_KINDS, or "margin": a tight
    crop's control, paper all round; `neighbour`, another digit, for the "neighbour" kind), its style
    in `record`."""
    record = {} if record is None else record
    kind = str(rng.choice(CROP_KINDS)) if kind is None else kind
    record["kind"] = kind
    tall = int(rng.integers(8, 33)) if kind in ("tiny", "blocky") else int(rng.integers(40, 400))
    mask = _digit_ink(digit, rng, max(tall, 24) if kind not in ("tiny", "blocky") else 96, record)
    if kind in ("tiny", "blocky"):  # a crop of 8-32 px: the ink reduced by area
        h, w = mask.shape
        f = tall / max(h, w)
        mask = np.asarray(Image.fromarray(mask, mode="F").resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.BOX))
    if kind == "margin":  # the control for "tight": the same kind of crop with paper all round
        h, w = mask.shape
        mask = np.pad(mask, [(int(rng.integers(h // 6, h // 3 + 2)),) * 2, (int(rng.integers(h // 6, h // 3 + 2)),) * 2])
    if kind == "edges":  # paper on one to three sides, the ink touching the others
        h, w = mask.shape
        sides = rng.permutation(4)[: int(rng.integers(1, 4))]
        pad = [int(rng.integers(2, max(3, h // 3))) if i in sides else 0 for i in range(4)]
        mask = np.pad(mask, ((pad[0], pad[1]), (pad[2], pad[3])))
    if kind == "neighbour" and neighbour is not None:  # a slice of the next digit, cut by the edge
        other = _digit_ink(neighbour, rng, mask.shape[0], {})
        cut = other[:, -max(2, int(other.shape[1] * rng.uniform(0.1, 0.3))):]
        gap = np.zeros((mask.shape[0], int(rng.integers(1, max(2, mask.shape[1] // 6)))), np.float32)
        piece = np.zeros((mask.shape[0], cut.shape[1]), np.float32)
        piece[: min(len(cut), len(piece))] = cut[: len(piece)]
        left = bool(rng.random() < 0.5)
        mask = np.concatenate([piece, gap, mask] if left else [mask, gap, piece[:, ::-1]], axis=1)
        record["neighbour_side"] = "left" if left else "right"
    mask, lines = _cell(mask, rng) if kind == "cell" else (mask, np.zeros_like(mask))
    im = _paint(mask, lines, rng, record)
    if kind == "blocky":  # a tiny crop zoomed without smoothing (a screenshot of a zoomed view)
        z = int(rng.integers(3, 13))
        im = im.resize((im.width * z, im.height * z), Image.Resampling.NEAREST)
    record["px"] = list(im.size)
    fmt = str(rng.choice(["png", "jpeg", "webp"], p=[0.5, 0.35, 0.15])) if kind not in ("tiny", "blocky") else "png"
    record["format"] = fmt
    path = out_base.with_suffix({"png": ".png", "jpeg": ".jpg", "webp": ".webp"}[fmt])
    im.save(path, **({} if fmt == "png" else {"quality": int(rng.integers(50, 95))}))
    return path


def build_crops(images: np.ndarray, labels: np.ndarray, n: int, out_dir: Path, seed: int = 0,
                part: slice = TUNING, records: list | None = None, kind: str | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """n crop files (`render_crop`) from a seeded sample of one slice of the digits: (paths, labels,
    indices); `kind` fixes the kind of crop."""
    rng = np.random.default_rng(seed)
    pool = np.arange(len(images))[part]
    idx = rng.choice(pool, size=n, replace=False)
    neighbours = rng.choice(pool, size=n)
    out_dir.mkdir(parents=True, exist_ok=True)
    styles = [{} for _ in idx]
    paths = [str(render_crop(images[i], rng, out_dir / f"crop{j:04d}", styles[j], images[o], kind))
             for j, (i, o) in enumerate(zip(idx, neighbours))]
    if records is not None:
        records.extend(styles)
    return paths, labels[idx], idx
