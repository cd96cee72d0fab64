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


def normalize_ink(gray: np.ndarray) -> np.ndarray:
    """-> ink in (0, 1] on a 0 background; polarity from the border; texture and noise removed."""
    background = _border_level(gray)
    x = 1.0 - gray if background > 0.5 else gray.copy()
    background = min(background, 1.0 - background)
    ink = float(np.percentile(x, 99.9))  # thin strokes on a large canvas cover well under 1% of it
    if ink - background < 0.15:
        raise PreprocessError("no digit found (blank or featureless image)")
    x = np.clip((x - background) / (ink - background), 0.0, 1.0)
    if min(x.shape) >= 56:  # speckle noise; a median filter would erase strokes of tiny images
        x = np.array(Image.fromarray(x, mode="F").filter(ImageFilter.MedianFilter(3)))
    x[x < 0.25] = 0.0  # paper texture, JPEG ringing, faint shadows
    return x


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
