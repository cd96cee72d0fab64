"""Image file -> 28x28 float32 in [0, 1], light digit on dark, the way MNIST itself was made.  [runtime side]

Decode by content; EXIF orientation; transparency composited onto a background that contrasts with
the ink; grayscale; polarity detected from the border and inverted when the ink is dark; paper
texture and noise suppressed; crop to the ink's bounding box; stroke width brought near MNIST's;
scale to fit 20x20 keeping the aspect ratio; place in 28x28 by the centre of mass.
Images already in MNIST form (28x28, light on dark) pass through unchanged.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from edgemnist import contract

MAX_PIXELS = 40_000_000  # refuse larger images before decoding them (decompression bombs)
WORK_SIDE = 512  # larger images are reduced to about this before the pixel work
BOX, FRAME = 20, contract.IMAGE_SIZE  # MNIST: digit fitted in 20x20, centred by mass in 28x28
MNIST_STROKE = 2.2  # typical MNIST stroke width in pixels of the 28x28 frame
BACKGROUND_SIDE = 64  # the background field is estimated on a reduction to about this size
COMPONENT_SIDE = 128  # specks and ruled lines are found on a max-pooled mask of at most this size
MIN_PART = 0.08  # a component with less ink than this share of the largest one is a speck


Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard, at our limit


class PreprocessError(Exception):
    """This image cannot be turned into a digit; the message is one line for the user."""


def load_gray(path: str | Path) -> np.ndarray:
    """Decode any Pillow format by content -> float32 [H, W] in [0, 1] (transparency composited)."""
    path = Path(path)
    if not path.exists():
        raise PreprocessError("no such file")
    if path.is_dir():
        raise PreprocessError("is a directory, not an image")
    if path.stat().st_size == 0:
        raise PreprocessError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # Pillow warns past MAX_IMAGE_PIXELS
            im = Image.open(path)  # reads the header only; too many pixels raise here, before decoding
            im.seek(0)  # first frame of an animation
            if im.format == "JPEG" and max(im.size) > 2 * WORK_SIDE:
                im.draft("L", (WORK_SIDE, WORK_SIDE))  # decode JPEG at reduced scale
            im.load()
            im = ImageOps.exif_transpose(im)
    except UnidentifiedImageError:
        raise PreprocessError("not an image (unrecognised content)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PreprocessError(
            f"image larger than {MAX_PIXELS / 1e6:.0f} MP: refusing to decode it (decompression bomb guard)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise PreprocessError(f"cannot decode image ({str(e) or type(e).__name__})") from None
    factor = max(im.size) // WORK_SIDE
    if factor >= 2:
        im = im.reduce(factor)
    return _to_gray(im)


def _to_gray(im: Image.Image) -> np.ndarray:
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.float32) / 65535.0
    if im.mode in ("I", "F"):
        a = np.asarray(im, dtype=np.float32)
        hi = a.max()
        return (a - a.min()) / (hi - a.min()) if hi > a.min() else np.zeros_like(a)
    if im.mode == "1":
        im = im.convert("L")
    if im.mode == "CMYK" or im.mode == "YCbCr" or im.mode == "LAB" or im.mode == "HSV":
        im = im.convert("RGB")
    has_alpha = im.mode in ("RGBA", "LA", "RGBa", "La", "PA")
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        if alpha.min() < 0.99:
            # ink is where the image is opaque: composite onto a background that contrasts with it
            w = alpha.sum()
            ink_level = float((gray * alpha).sum() / w) if w > 0 else 0.0
            background = 1.0 if ink_level < 0.5 else 0.0
            return gray * alpha + background * (1 - alpha)
        return gray
    return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def _border_level(a: np.ndarray) -> float:
    """Median of the outer ring (5% of the side): the background. (np.median's first call pulls in
    lazy numpy imports worth ~25 ms of `infer` start-up; a sort of the ring does not.)"""
    k = max(1, min(a.shape) // 20)
    ring = np.sort(np.concatenate([a[:k].ravel(), a[-k:].ravel(), a[:, :k].ravel(), a[:, -k:].ravel()]))
    return float(ring[len(ring) // 2])


def is_mnist_form(gray: np.ndarray) -> bool:
    return gray.shape == (FRAME, FRAME) and _border_level(gray) < 0.1


def background_field(x: np.ndarray) -> np.ndarray:
    """The slowly varying background under light ink (shadows, a lamp's gradient, vignetting, tinted
    paper): a grey-level opening (min then max filter) wider than any stroke, computed on a block-mean
    reduction to about 64 px and brought back with bilinear interpolation."""
    h, w = x.shape
    f = max(1, max(h, w) // BACKGROUND_SIDE)
    sh, sw = h // f, w // f
    small = x[: sh * f, : sw * f].reshape(sh, f, sw, f).mean(axis=(1, 3), dtype=np.float32)
    k = max(3, min(sh, sw) // 4 | 1)
    return _upsample(_extreme(_extreme(small, k, np.min), k, np.max), h, w)


def _extreme(a: np.ndarray, k: int, reduce) -> np.ndarray:
    """Pillow's MinFilter/MaxFilter(k) (square window, border replicated), as a row then a column pass."""
    m = k // 2
    rows = reduce(np.lib.stride_tricks.sliding_window_view(np.pad(a, ((0, 0), (m, m)), mode="edge"), k, axis=1), axis=-1)
    return reduce(np.lib.stride_tricks.sliding_window_view(np.pad(rows, ((m, m), (0, 0)), mode="edge"), k, axis=0), axis=-1)


def _upsample(small: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear, pixel centres aligned, edges clamped."""
    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    (y0, y1, ty), (x0, x1, tx) = axis(h, small.shape[0]), axis(w, small.shape[1])
    rows = small[y0] * (1 - ty)[:, None] + small[y1] * ty[:, None]
    return rows[:, x0] * (1 - tx) + rows[:, x1] * tx


def normalize_ink(gray: np.ndarray) -> np.ndarray:
    """-> ink in (0, 1] on a 0 background; polarity from the border; uneven lighting, paper texture
    and noise removed."""
    x = 1.0 - gray if _border_level(gray) > 0.5 else gray
    x = x - background_field(x)
    background = max(_border_level(x), 0.0)
    ink = float(np.percentile(x, 99.9))  # thin strokes on a large canvas cover well under 1% of it
    if ink - background < 0.15:
        raise PreprocessError("no digit found (blank or featureless image)")
    x = np.clip((x - background) / (ink - background), 0.0, 1.0)
    rules = np.partition(x, x.shape[1] // 2, axis=1)[:, x.shape[1] // 2]  # a row's median: a ruled line crosses the whole page,
    rules[rules >= 0.5] = 0.0  # a digit does not, unless it fills the width (then it is ink, not a faint line)
    x = np.maximum(x - rules[:, None], 0.0)
    x[x < 0.25] = 0.0  # paper texture, JPEG ringing, faint shadows
    return keep_digit(x)


def keep_digit(x: np.ndarray) -> np.ndarray:
    """Erase what is not part of the digit: specks (components with under MIN_PART of the largest
    one's ink) and ruled lines (a flat component at least half the image wide), found on a
    max-pooled mask of at most COMPONENT_SIDE px so a large photo costs no more than a small one."""
    h, w = x.shape
    f = -(-max(h, w) // COMPONENT_SIDE)
    ph, pw = -(-h // f), -(-w // f)
    padded = np.zeros((ph * f, pw * f), np.float32)
    padded[:h, :w] = x
    blocks = padded.reshape(ph, f, pw, f)
    mass = blocks.sum(axis=(1, 3))
    labels, boxes = _components(mass > 0)
    if len(boxes) <= 1:
        return x
    ink = np.bincount(labels.ravel(), weights=mass.ravel(), minlength=len(boxes) + 1)[1:]
    keep = ink >= MIN_PART * ink.max()
    for i, (top, left, bottom, right) in enumerate(boxes):
        if right - left + 1 >= pw / 2 and bottom - top + 1 <= max(1, ph // 25) and keep.sum() > 1:
            keep[i] = False  # a ruled line
    if keep.all():
        return x
    pooled_keep = np.isin(labels, np.flatnonzero(keep) + 1)
    full = np.repeat(np.repeat(pooled_keep, f, axis=0), f, axis=1)[:h, :w]
    return np.where(full, x, np.float32(0))


def _components(mask: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """8-connected components of a small boolean mask: labels (1..n, 0 = background) and each
    component's bounding box (top, left, bottom, right), in raster order of their first pixel."""
    h, w = mask.shape
    labels = np.zeros((h, w), np.int32)
    boxes = []
    for start in np.flatnonzero(mask):
        y, x = divmod(int(start), w)
        if labels[y, x]:
            continue
        n = len(boxes) + 1
        labels[y, x] = n
        stack, box = [(y, x)], [y, x, y, x]
        while stack:
            cy, cx = stack.pop()
            box = [min(box[0], cy), min(box[1], cx), max(box[2], cy), max(box[3], cx)]
            for ny in range(max(cy - 1, 0), min(cy + 2, h)):
                for nx in range(max(cx - 1, 0), min(cx + 2, w)):
                    if mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = n
                        stack.append((ny, nx))
        boxes.append(tuple(box))
    return labels, boxes


def _stroke_width(mask: np.ndarray) -> float:
    """Area / half the boundary length: the width of a long stroke."""
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    boundary = int(mask.sum() - inner.sum())
    return float(mask.sum()) / max(boundary / 2, 1.0)


def _adjust_stroke(x: np.ndarray, scale: float) -> np.ndarray:
    """Dilate thin strokes (or erode very thick ones) so they land near MNIST's width after scaling."""
    width = _stroke_width(x > 0.5)
    target = MNIST_STROKE / scale  # in source pixels
    im = Image.fromarray(x, mode="F")
    if width < 0.7 * target:
        size = int(round(target - width)) | 1  # odd
        im = im.filter(ImageFilter.MaxFilter(min(size, 9)))
    elif width > 2.0 * target:
        size = int(round((width - 1.5 * target) / 2)) | 1
        im = im.filter(ImageFilter.MinFilter(min(size, 9)))
    return np.array(im)


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """Grayscale [H, W] in [0, 1] -> MNIST-form float32 [28, 28]."""
    if is_mnist_form(gray):
        return gray.astype(np.float32)
    x = normalize_ink(gray)
    rows, cols = np.nonzero(x)
    if len(rows) == 0:
        raise PreprocessError("no digit found (blank or featureless image)")
    x = x[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = x.shape
    scale = BOX / max(h, w)
    x = _adjust_stroke(np.pad(x, 4), scale)[4:-4, 4:-4]
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(x, mode="F").resize((new_w, new_h), Image.Resampling.LANCZOS))
    small = np.clip(small, 0.0, None)
    small /= max(float(small.max()), 1e-6)
    total = small.sum()
    cy = (small.sum(1) @ np.arange(new_h)) / total
    cx = (small.sum(0) @ np.arange(new_w)) / total
    top = int(np.clip(round(FRAME / 2 - 0.5 - cy), 0, FRAME - new_h))
    left = int(np.clip(round(FRAME / 2 - 0.5 - cx), 0, FRAME - new_w))
    out = np.zeros((FRAME, FRAME), np.float32)
    out[top : top + new_h, left : left + new_w] = small
    return out


def preprocess(path: str | Path, polarity: str = contract.POLARITY) -> np.ndarray:
    """Image file -> float32 [28, 28] in [0, 1] in the polarity the model's metadata asks for."""
    x = to_mnist(load_gray(path))
    return 1.0 - x if polarity == "dark-on-light" else x
