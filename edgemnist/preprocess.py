"""Image file -> 28x28 float32 in [0, 1], light digit on dark, the way MNIST itself was made.  [runtime side]

The pixel work is done at the resolution the answer needs: the digit ends as 20x20, so the picture is
brought to about WORK_SIDE px first (JPEGs are decoded at reduced scale, other formats reduced by an
integer box filter in Pillow), and every step after that costs the same for a 28-px crop and a
12-MP photo.

Steps: decode by content; EXIF orientation; transparency composited onto a background that contrasts
with the ink; grayscale; polarity (the outer 15%'s level against the image's two extremes); the lighting
field (a smooth surface fitted to the paper only, so it needs no margin of paper and never eats a
thick stroke); contrast; faint ruled lines; paper texture; then what is not the digit: specks, ruled
lines, box lines along the edges (a form's cell) and pieces of neighbouring digits cut by the crop;
crop to the ink; stroke width brought near MNIST's; fit in 20x20 keeping the aspect ratio; place in
28x28 by the centre of mass. Images already in MNIST form (28x28, light on dark) pass through unchanged.

edgemnist/webapp/preprocess.js follows this file step for step (the browser tests keep them equal).
"""

from __future__ import annotations

import functools
import io
import json
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edgemnist import ImageError, contract, first_line

# The parameters this file and the page's preprocess.js both read (its "why" says what each is for)
TABLE = json.loads((Path(__file__).parent / "webapp" / "preprocess.json").read_text())
P = TABLE["preprocess"]
MAX_PIXELS = P["max_pixels"]
WORK_SIDE = P["work_side"]
MIN_SIDE = P["min_side"]
BOX, FRAME = 20, contract.IMAGE_SIZE  # MNIST: digit fitted in 20x20, centred by mass in 28x28
MNIST_STROKE = P["mnist_stroke"]
MARGIN = P["frame_margin"]
FIELD_SIDE = P["field_side"]
MIN_PART = P["speck"]
INK_LEVEL = P["ink_level"]
DECODED_SCALE = "edgemnist.decoded_scale"  # open_image's note in Image.info: the file's pixels per decoded pixel
FILE_SIZE = "edgemnist.file_size"  # and the file's own width and height


class PreprocessError(ImageError):
    """This image cannot be turned into a digit; the message is one line for the user."""


def open_image(source: str | Path | bytes, side: int | tuple[int, int] = WORK_SIDE) -> Image.Image:
    """Decode any Pillow format by content (a file's path, or its bytes), the first frame, EXIF
    orientation applied; JPEGs at the reduced scale closest above `side` each way (or above a width and
    a height). Pillow's own limits are left as they are: the size is checked here from the header."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise PreprocessError("empty file")
        source = io.BytesIO(source)
    else:
        try:
            st = os.stat(source)  # one system call for the three checks
        except (FileNotFoundError, NotADirectoryError):
            raise PreprocessError("no such file") from None
        except OSError as e:  # the reason alone: the path is already at the head of the line
            raise PreprocessError(f"cannot read file ({e.strerror or first_line(e)})") from None
        except ValueError:  # os.stat of a name with a NUL byte (a path list on stdin, the API)
            raise PreprocessError("not a file name (it holds a NUL byte)") from None
        if stat.S_ISDIR(st.st_mode):
            raise PreprocessError("is a directory, not an image")
        if st.st_size == 0:
            raise PreprocessError("empty file")
    try:
        # Pillow's warnings (its own bomb limit: ours is lower and below; corrupt EXIF or TIFF tags) would
        # reach the user as extra lines: a file either decodes or gets one line of error
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(source) as im:  # reads the header only
                return _decode(im, side)
    except UnidentifiedImageError:
        raise PreprocessError("not an image (unrecognised content)") from None
    except OSError as e:
        if e.errno is not None:  # opening the file (permissions, a vanished file): not a decoder's complaint
            raise PreprocessError(f"cannot read file ({e.strerror})") from None
        raise PreprocessError(f"cannot decode image ({first_line(e)})") from None
    except Image.DecompressionBombError:
        raise PreprocessError(
            f"image larger than {MAX_PIXELS / 1e6:.0f} MP: refusing to decode it (decompression bomb guard)"
        ) from None
    except Exception as e:  # Pillow's decoders on outside bytes raise anything (OSError, SyntaxError, struct.error…)
        raise PreprocessError(f"cannot decode image ({first_line(e)})") from None


def _decode(im: Image.Image, side: int | tuple[int, int]) -> Image.Image:
    if im.width * im.height > MAX_PIXELS:
        raise Image.DecompressionBombError
    im.seek(0)  # first frame of an animation
    width, height = im.size
    if im.format == "JPEG":
        im.draft("L" if im.mode in ("RGB", "L", "YCbCr") else None, side if isinstance(side, tuple) else (side, side))
    im.load()
    out = ImageOps.exif_transpose(im) if im.getexif().get(0x0112, 1) != 1 else im
    out.info[DECODED_SCALE] = width / im.width  # the file's pixels per decoded pixel (a JPEG's draft scale)
    out.info[FILE_SIZE] = (width, height)
    return out


def longer_side(im: Image.Image, side: int) -> tuple[int, int]:
    """The width and height that bring the longer side of the file `im` was decoded from to `side`:
    what open_image needs to decode it for a look at about `side` px."""
    width, height = im.info.get(FILE_SIZE, im.size)
    return max(1, side * width // max(width, height)), max(1, side * height // max(width, height))


def serves(im: Image.Image, size: tuple[int, int]) -> bool:
    """Whether a picture open_image decoded (for a smaller size) serves as well as decoding the file
    again for `size` (a width and a height) would: it was decoded whole, or a JPEG's new reduced scale
    (Pillow's draft: the coarsest of 1/8, 1/4, 1/2 and 1 that keeps `size`) would give the same or a
    smaller picture once work_gray reduces it (320 px reduced by 2 is no more than 160 decoded)."""
    scale = round(im.info.get(DECODED_SCALE, 1.0))
    if scale == 1:
        return True
    width, height = im.info[FILE_SIZE]
    fit = min(width // size[0], height // size[1])
    again = next(s for s in (8, 4, 2, 1) if s <= max(fit, 1))
    longer, side = -(-max(width, height) // again), max(size)
    return again >= scale or max(im.size) / work_factor(*im.size, side) >= longer / work_factor(longer, longer, side)


def load_gray(path: str | Path | bytes, side: int = WORK_SIDE) -> np.ndarray:
    """Image file (or its bytes) -> float32 [H, W] in [0, 1], the longer side brought to about `side`
    (transparency composited)."""
    return decoded_gray(open_image(path, side), side)


def decoded_gray(im: Image.Image, side: int = WORK_SIDE) -> np.ndarray:
    """work_gray of a decoded picture; Pillow's failures to convert an odd one (mode, palette, bands)
    as one PreprocessError line."""
    try:
        return work_gray(im, side)
    except Exception as e:  # Pillow's conversions of a decoded but odd image (mode, palette, bands)
        raise PreprocessError(f"cannot decode image ({first_line(e)})") from None


def work_factor(width: int, height: int, side: int = WORK_SIDE) -> int:
    """The integer reduction that brings the longer side to about `side` (1: none)."""
    return max(1, round(max(width, height) / side))


def work_gray(im: Image.Image, side: int = WORK_SIDE, factor: int | None = None) -> np.ndarray:
    """A decoded Pillow image -> grayscale float32 [H, W] in [0, 1], the longer side reduced to about
    `side` (or by `factor`)."""
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float32)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        im = Image.fromarray(np.round(a * 255).astype(np.uint8), mode="L")
    elif im.mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
    elif im.mode not in ("L", "RGBA"):
        im = (im.convert("RGB") if im.mode in ("LAB", "HSV") else im).convert("L")  # Pillow has no LAB/HSV -> L
    factor = work_factor(*im.size, side) if factor is None else factor
    if factor >= 2:
        im = im.reduce(factor)  # box filter in C, partial blocks at the edges averaged over what they hold
    if im.mode == "RGBA":
        return _composite(np.asarray(im, dtype=np.float32) / 255.0)
    return np.asarray(im, dtype=np.float32) / 255.0


def _composite(rgba: np.ndarray) -> np.ndarray:
    """Ink is where the image is opaque: composite onto a background that contrasts with it."""
    alpha = rgba[..., 3]
    gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
    if alpha.min() >= 0.99:
        return gray
    w = alpha.sum()
    ink_level = float((gray * alpha).sum() / w) if w > 0 else 0.0
    background = 1.0 if ink_level < 0.5 else 0.0
    return gray * alpha + background * (1 - alpha)


def _ring(a: np.ndarray, share: float) -> np.ndarray:
    """The outer ring, `share` of the shorter side wide (at least one pixel)."""
    return np.take(a, _ring_index(a.shape, share))


@functools.lru_cache(maxsize=256)
def _ring_index(shape: tuple[int, int], share: float) -> np.ndarray:
    """The flat indices of `_ring`: top rows, bottom rows, then the left and right columns between them."""
    i = np.arange(shape[0] * shape[1]).reshape(shape)
    k = max(1, int(min(shape) * share))
    index = np.concatenate([i[:k].ravel(), i[-k:].ravel(), i[k:-k, :k].ravel(), i[k:-k, -k:].ravel()])
    index.flags.writeable = False
    return index


def _kth(v: np.ndarray, k: int) -> float:
    """The k-th smallest value of a flat array. Far in the upper tail of a large array (the 99.9th
    percentile of a line's picture) only the values above a bound are partitioned: a bound that at
    least n - k values reach holds the answer among them, and a sixteenth of the values picks one."""
    above = len(v) - k  # values at least as large as the answer, itself included
    if len(v) >= 4096 and 64 * above <= len(v):
        sample = v[::16]
        j = max(0, len(sample) - 4 * (above // 16 + 1))
        top = v[v >= np.partition(sample, j)[j]]
        if above <= len(top) < len(v):
            v, k = top, len(top) - above
    return float(np.partition(v, k)[k])


def _median(v: np.ndarray) -> float:
    """The upper median (np.median's first call pulls in lazy imports worth ~25 ms of start-up)."""
    return _kth(v, len(v) // 2)


def is_mnist_form(gray: np.ndarray) -> bool:
    return gray.shape == (FRAME, FRAME) and _median(_ring(gray, P["mnist_form_ring"])) < P["mnist_form_paper"]


def _enlarge_tiny(gray: np.ndarray) -> np.ndarray:
    """A crop under MIN_SIDE px (8-47 px) -> MIN_SIDE px on its longer side (bilinear), so the stroke
    and speck steps have pixels to work on, and no more (an integer factor made a 40-px crop 80 px:
    4x the pixels to work on for the same answer)."""
    h, w = gray.shape
    if max(h, w) >= MIN_SIDE:
        return gray
    scale = MIN_SIDE / max(h, w)
    return bilinear(gray, max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5)))  # halves up, as JS's Math.round


def bilinear(small: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize, pixel centres aligned, edges clamped."""
    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    (y0, y1, ty), (x0, x1, tx) = axis(h, small.shape[0]), axis(w, small.shape[1])
    rows = small[y0] * (1 - ty)[:, None] + small[y1] * ty[:, None]
    return rows[:, x0] * (1 - tx) + rows[:, x1] * tx


def ink_is_dark(gray: np.ndarray) -> bool:
    """Polarity: the outer 15% of the picture is mostly paper wherever the digit does not fill it, so
    its median lies on the paper's side of the middle between the image's darkest and lightest levels
    (0.1st and 99.9th percentiles: a thin digit on a large page covers well under 1% of it), even
    when the ink touches every edge or a form's box lines run along them, whatever the paper's own
    level. (Measured on the tuning crops: a 5% ring is right on 60% of form cells, 15% on 99%.)"""
    v = np.sort(gray, axis=None)  # one vectorised sort is cheaper than two partitions here
    k = v.size // P["tail_divisor"]
    return _median(_ring(gray, P["polarity_ring"])) > (float(v[k]) + float(v[-1 - k])) / 2


_BIN_CENTRES = (np.arange(64) + 0.5) / 64


def _otsu(v: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1] (64 bins): the split with the largest between-class variance."""
    hist = np.bincount(np.clip((v * 64).astype(np.intp), 0, 63), minlength=64)
    w0 = hist.cumsum()
    m0 = (hist * _BIN_CENTRES).cumsum()
    n, m = int(w0[-1]), float(m0[-1])
    between = (m * w0 - n * m0) ** 2 / np.maximum(w0 * (n - w0), 1e-12)
    return float((between[:-1].argmax() + 1) / 64)


def _block_mean(x: np.ndarray, side: int) -> np.ndarray:
    """The means of f x f blocks, f bringing the longer side to about `side` (rows and columns left
    over at the bottom and right are dropped)."""
    h, w = x.shape
    f = max(1, min(max(h, w) // side, h, w))  # at least one block each way
    if f == 1:
        return x
    return _block_sum(h, f) @ x @ _block_sum(w, f).T * np.float32(1 / (f * f))  # two matrix products: ~3x a reshaped sum


@functools.lru_cache(maxsize=256)
def _block_sum(n: int, f: int) -> np.ndarray:
    """[n // f, n] float32: row i sums elements i*f .. i*f+f-1 (read-only: cached)."""
    m = (np.arange(n)[None, :] // f == np.arange(n // f)[:, None]).astype(np.float32)
    m.flags.writeable = False
    return m


@functools.lru_cache(maxsize=256)
def _axis(n: int) -> np.ndarray:
    """n points over [-1, 1] (read-only: cached)."""
    a = np.linspace(-1, 1, n)
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=256)
def _axis32(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n points over [-1, 1] and their squares, float32 (read-only: cached)."""
    a = _axis(n).astype(np.float32)
    aa = a * a
    a.flags.writeable = aa.flags.writeable = False
    return a, aa


@functools.lru_cache(maxsize=64)
def _design(sh: int, sw: int) -> np.ndarray:
    """The quadratic surface's terms 1, u, v, u^2, uv, v^2 on an sh x sw grid over [-1, 1]^2: [sh*sw, 6]."""
    v, u = np.meshgrid(_axis(sh), _axis(sw), indexing="ij")
    u, v = u.ravel(), v.ravel()
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)


def background_field(x: np.ndarray) -> np.ndarray:
    """The slowly varying background under light ink (shadows, a lamp's gradient, vignetting, tinted
    paper): a quadratic surface fitted by least squares to the paper alone, on a block-mean reduction
    to about FIELD_SIDE px. Paper starts as the lower class of an Otsu split; the refit keeps the
    blocks less than 2.5 noise deviations above the first surface (ink only ever adds light), so blocks that
    mix ink and paper drop out; two fits. With little paper left (a digit filling the frame) the surface drops
    to a plane (1, u, v), then a constant (also where the grid is one block thin)."""
    small = _block_mean(x, FIELD_SIDE)
    design = _design(*small.shape)
    z = small.ravel().astype(np.float64)
    paper = z <= _otsu(z)
    coef = np.zeros(6)
    for fit in range(2):
        n = np.count_nonzero(paper)
        terms = 6 if n >= max(P["field_terms_6_at"], z.size // P["field_terms_6_divisor"]) else 3 if n >= P["field_terms_3_at"] else 0
        coef[:] = 0.0
        a = design[paper, :terms]
        ata = a.T @ a
        if terms and abs(np.linalg.det(ata)) > 1e-9:  # a grid one block thin has no second direction to fit
            coef[:terms] = np.linalg.solve(ata, a.T @ z[paper])
        else:
            coef[0] = _median(z[paper]) if n else _median(z)
            break
        if fit == 1:
            break
        resid = z - design @ coef
        noise = P["field_mad_to_sigma"] * np.abs(resid[paper]).sum() / n + P["field_noise_floor"]
        paper = resid <= P["field_paper_sigmas"] * noise
    (u, uu), (v, vv) = _axis32(x.shape[1]), _axis32(x.shape[0])
    c0, cu, cv, cuu, cuv, cvv = coef.tolist()
    across = c0 + cu * u + cuu * uu  # the terms of u alone, one row
    slope = cv + cuv * u  # what multiplies v, one row
    return (across + v[:, None] * slope) + (cvv * vv)[:, None]


@dataclass
class Seen:
    """What the first look at a picture found, for the number reader (segment.line_of) and the note on
    several digits: boxes are (top, left, bottom, right) in the enlarged working picture's pixels."""

    dark: bool | None = None  # the ink darker than the paper
    digits: int = 1  # digit-sized marks side by side (more than 1: the picture holds several digits)
    box: list[int] | None = None  # the digit's own mark
    extent: list[int] | None = None  # all the ink kept


def normalize_ink(gray: np.ndarray, seen: Seen | None = None) -> np.ndarray:
    """-> ink in (0, 1] on a 0 background (`ink_image`), then everything that is not the digit taken
    off (`keep_digit`); `seen.dark`: whether the ink was darker than the paper."""
    dark = ink_is_dark(gray)
    if seen is not None:
        seen.dark = dark
    return keep_digit(ink_image(gray, dark), seen)


def ink_image(gray: np.ndarray, dark: bool | None = None) -> np.ndarray:
    """-> ink in (0, 1] on a 0 background: polarity (`dark`: already known), lighting, contrast, faint
    ruled lines and paper texture taken off."""
    x = 1.0 - gray if (ink_is_dark(gray) if dark is None else dark) else gray
    x = x - background_field(x)
    ink = _kth(x.ravel(), x.size - 1 - x.size // P["tail_divisor"])  # the 99.9th percentile
    if ink < P["min_contrast"]:
        raise PreprocessError("no digit found (blank or featureless image)")
    x = np.clip(x * (1.0 / ink), 0.0, 1.0)
    k = x.shape[1] // P["rule_row_divisor"]  # a ruled line crosses the whole width: it lifts even a row's 10th
    rules = np.zeros(x.shape[0], x.dtype)  # percentile; a digit, even cropped tight, leaves paper in almost every row
    lifted = np.flatnonzero(np.count_nonzero(x, axis=1) >= x.shape[1] - k)  # rows with k + 1 zeros have 0 there
    rules[lifted] = np.partition(x[lifted], k, axis=1)[:, k]
    rules[rules >= P["rule_is_ink"]] = 0.0  # (or fills it: then it is ink, not a faint line)
    x = np.maximum(x - rules[:, None], 0.0)
    x[x < INK_LEVEL] = 0.0
    return x


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of a boolean mask in raster order: row, first column, one past the last."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), bool)  # a clear column either side: no run crosses a row
    padded[:, 1:-1] = mask
    flat = padded.ravel()
    edges = np.flatnonzero(flat[1:] != flat[:-1])  # a run's start and its end, alternately
    starts, ends = edges[0::2], edges[1::2]
    ys = starts // (w + 2)
    return ys, starts - ys * (w + 2), ends - ys * (w + 2)


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components by runs, vectorised: each horizontal run is joined to the runs of the
    next row that overlap it or touch it diagonally, and the joins are resolved by label propagation
    with pointer jumping. For each run its row, start, end (exclusive) and component (0..n-1,
    numbered in raster order of their first run), and each component's bounding box as rows of
    (top, left, bottom, right), inclusive."""
    ys, starts, ends = _runs(mask)
    h, w = mask.shape
    stride = w + 2
    key_start, key_end = ys * stride + starts, ys * stride + ends
    first = np.searchsorted(key_end, (ys + 1) * stride + starts)  # next row's first run ending at or after this start
    last = np.searchsorted(key_start, (ys + 1) * stride + ends, side="right")  # ... and past its last starting by this end
    count = np.maximum(last - first, 0)
    a = np.repeat(np.arange(len(ys)), count)
    b = np.repeat(first - np.cumsum(count) + count, count) + np.arange(count.sum())
    label = np.arange(len(ys))
    jumps = max(1, len(ys) - 1).bit_length()  # pointer doubling: enough to cross the longest chain
    while True:  # hook the larger root of every join under the smaller, then jump pointers to roots
        la, lb = label[a], label[b]
        differ = la != lb
        if not differ.any():
            break
        np.minimum.at(label, np.maximum(la, lb)[differ], np.minimum(la, lb)[differ])
        for _ in range(jumps):  # unchecked: one indexing each, where a check per jump cost two calls more
            label = label[label]
    is_root = label == np.arange(len(label))  # a component's label is its first run's index
    comp = (np.cumsum(is_root) - 1)[label]
    n = int(is_root.sum())
    if n == 1:  # the common case: one box around every run
        return ys, starts, ends, comp, np.array([[ys[0], starts.min(), ys[-1], ends.max() - 1]])
    boxes = np.empty((n, 4), np.int64)
    boxes[:, :2] = (h, w)
    boxes[:, 2:] = -1
    np.minimum.at(boxes[:, 0], comp, ys)
    np.minimum.at(boxes[:, 1], comp, starts)
    np.maximum.at(boxes[:, 2], comp, ys)
    np.maximum.at(boxes[:, 3], comp, ends - 1)
    return ys, starts, ends, comp, boxes


def keep_digit(x: np.ndarray, seen: Seen | None = None) -> np.ndarray:
    """Erase what is not part of the digit: specks (components with under MIN_PART of the largest
    one's ink), ruled lines (a flat component at least half the image wide), box lines along the
    edges (a form's cell: `edge_lines`), and pieces of neighbouring digits (a component beside the
    digit, not overlapping its columns, cut by the left or right edge). `seen` receives how many
    digit-sized marks stand side by side, the digit's box and the extent of the ink kept.
    Works in place, as `edge_lines` does: `x` is normalize_ink's own array."""
    mask = x > 0
    if edge_lines(x, mask):
        mask = x > 0
    h, w = x.shape
    ys, starts, ends, comp, boxes = components(mask)
    n = len(boxes)
    if seen is not None:
        seen.digits = int(n > 0)
        if n == 1:
            seen.box = seen.extent = boxes[0].tolist()
    if n <= 1:
        return x
    csum = np.concatenate([np.zeros((h, 1), np.float32), np.cumsum(x, axis=1, dtype=np.float32)], axis=1)
    ink = np.bincount(comp, weights=csum[ys, ends] - csum[ys, starts], minlength=n)
    main = int(np.argmax(ink))
    keep = ink >= MIN_PART * ink[main]
    top, left, bottom, right = boxes.T
    flat = (right - left + 1 >= P["ruled_line_width"] * w) & (bottom - top + 1 <= max(1, h // P["ruled_line_height_divisor"]))
    if keep.sum() > 1:
        keep &= ~flat | (np.arange(n) == main)  # a ruled line
    main_top, main_left, main_bottom, main_right = boxes[main]
    apart = (right < main_left) | (left > main_right)  # no column in common with the digit
    beside = apart & ((left == 0) | (right == w - 1))
    keep &= ~(beside & (ink < P["neighbour_ink"] * ink[main]))  # a neighbour's piece at the left or right edge
    if seen is not None:
        # another digit beside this one: a quarter of the narrower one's columns in common at most,
        # half its height or more, a fifth of its ink or more
        shared = np.minimum(right, main_right) - np.maximum(left, main_left) + 1
        side_by_side = shared <= P["side_by_side_shared"] * np.minimum(right - left + 1, main_right - main_left + 1)
        tall = bottom - top + 1 >= P["side_by_side_height"] * (main_bottom - main_top + 1)
        others = keep & side_by_side & tall & (ink >= P["side_by_side_ink"] * ink[main]) & (np.arange(n) != main)
        seen.digits = 1 + int(others.sum())
        seen.box = boxes[main].tolist()
        kept = boxes[keep]
        seen.extent = [int(kept[:, 0].min()), int(kept[:, 1].min()), int(kept[:, 2].max()), int(kept[:, 3].max())]
    dropped = ~keep[comp]
    for y, s, e in zip(ys[dropped].tolist(), starts[dropped].tolist(), ends[dropped].tolist()):
        x[y, s:e] = 0.0
    return x


def edge_lines(x: np.ndarray, mask: np.ndarray) -> bool:
    """Erase box lines left at the edges of a crop (a form's cell) in place: a band of rows (columns) within the outer
    15% inked across at least 90% of the width (height), thinner than half the ink's stroke width,
    with at most half that coverage just inside it (a straight line, not the round top of a 0). A
    digit's own bar touching the edge is as thick as its strokes and stays. `mask` is x > 0; True
    when something was erased."""
    h, w = mask.shape
    covers = mask.sum(axis=1) / w, mask.sum(axis=0) / h
    if covers[0].max() < P["edge_line_cover"] and covers[1].max() < P["edge_line_cover"]:
        return False
    erased = False
    half_width = max(1.0, _stroke_width(mask) / 2)
    for axis, cover in zip((1, 0), covers):
        n = len(cover)
        line = np.flatnonzero(cover >= P["edge_line_cover"])
        edge = max(1, int(n * P["edge_band"]))
        for band, inside in ((line[line < edge], 1), (line[line >= n - edge], -1)):
            if not 0 < len(band) <= half_width:
                continue
            after = band[-1] + 1 if inside == 1 else band[0] - 1
            if 0 <= after < n and cover[after] > P["edge_line_inside"] * cover[band].min():
                continue
            if axis == 1:
                x[band, :] = 0.0
            else:
                x[:, band] = 0.0
            erased = True
    return erased


def _stroke_width(mask: np.ndarray):
    """Area / half the boundary length: the width of a long stroke (of a mask [H, W], or of each of a stack
    [N, H, W])."""
    inner = mask.copy()
    inner[..., 1:, :] &= mask[..., :-1, :]
    inner[..., :-1, :] &= mask[..., 1:, :]
    inner[..., :, 1:] &= mask[..., :, :-1]
    inner[..., :, :-1] &= mask[..., :, 1:]
    lead = mask.shape[:-2]
    area, interior = (m.reshape(*lead, -1).view(np.uint8).sum(-1, dtype=np.int32) for m in (mask, inner))  # bytes: twice as fast as bools
    return area / np.maximum((area - interior) / 2, 1.0)


def extreme_filter(x: np.ndarray, size: int, reduce=np.maximum) -> np.ndarray:
    """Pillow's MaxFilter(size) (reduce=np.maximum) or MinFilter(size) (np.minimum) of a picture [H, W]
    or of each of a stack [N, H, W]: a size x size window, the border replicated; as a row pass then a
    column pass over shifted views."""
    m = size // 2
    if m == 0:
        return x
    h, w = x.shape[-2:]
    p = x[..., np.clip(np.arange(-m, h + m), 0, h - 1), :][..., np.clip(np.arange(-m, w + m), 0, w - 1)]  # border replicated
    rows = p[..., 0:w].copy()
    for d in range(1, size):
        reduce(rows, p[..., d : d + w], out=rows)
    out = rows[..., 0:h, :].copy()
    for d in range(1, size):
        reduce(out, rows[..., d : d + h, :], out=out)
    return out


def _stroke_filter(width: float, scale: float) -> tuple[int, np.ufunc] | None:
    """The extreme_filter (size, reduce) that brings strokes `width` px wide near MNIST's width after
    scaling by `scale`: dilate thin ones, erode very thick ones; None: leave them."""
    target = MNIST_STROKE / scale  # in source pixels
    if width < P["stroke_thin"] * target:
        return min(int(round(target - width)) | 1, P["stroke_filter_max"]), np.maximum
    if width > P["stroke_thick"] * target:
        return min(int(round((width - P["stroke_thick_to"] * target) / 2)) | 1, P["stroke_filter_max"]), np.minimum
    return None


def _adjust_strokes(stack: np.ndarray, scales: list[float]) -> np.ndarray:
    """`_stroke_filter` applied to each digit of a stack [N, H, W] (each in a border of MARGIN px of 0:
    a filter reaches no further), digits needing the same filter filtered together."""
    like: dict[tuple[int, np.ufunc], list[int]] = {}
    for i, (width, scale) in enumerate(zip(_stroke_width(stack > 0.5).tolist(), scales)):
        f = _stroke_filter(width, scale)
        if f is not None and f[0] > 1:
            like.setdefault(f, []).append(i)
    out = stack.copy() if like else stack
    for f, which in like.items():
        out[which] = extreme_filter(stack[which], *f)
    return out


@functools.lru_cache(maxsize=1024)
def lanczos_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Pillow's LANCZOS (a = 3) resampling of one axis as a matrix [n_out, n_in]: the same support,
    centres and normalised weights as its C code (Resample.c), so M @ x equals Image.resize."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    centre = (np.arange(n_out) + 0.5) * scale
    lo = np.maximum(0, (centre - support + 0.5).astype(np.int64))[:, None]
    hi = np.minimum(n_in, (centre + support + 0.5).astype(np.int64))[:, None]
    j = np.arange(n_in)[None, :]
    t = (j - centre[:, None] + 0.5) / filterscale
    with np.errstate(invalid="ignore", divide="ignore"):
        sinc = np.where(t == 0, 1.0, np.sin(np.pi * t) / (np.pi * t))
        sinc3 = np.where(t == 0, 1.0, np.sin(np.pi * t / 3) / (np.pi * t / 3))
    k = np.where((j >= lo) & (j < hi) & (np.abs(t) < 3), sinc * sinc3, 0.0)
    total = k.sum(axis=1, keepdims=True)
    return np.divide(k, total, out=k, where=total != 0)


def resize_lanczos(x: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
    h, w = x.shape
    return (lanczos_matrix(h, new_h) @ x.astype(np.float64) @ lanczos_matrix(w, new_w).T).astype(np.float32)


def to_mnist(gray: np.ndarray, seen: Seen | None = None) -> np.ndarray:
    """Grayscale [H, W] in [0, 1] (at the working resolution) -> MNIST-form float32 [28, 28].
    `seen` receives what the look found on the way (`Seen`: how many digits side by side...)."""
    ink = first_look(gray, seen)
    return gray.astype(np.float32) if ink is None else fit_frame(ink)


def first_look(gray: np.ndarray, seen: Seen | None = None) -> np.ndarray | None:
    """Grayscale at the working resolution -> the digit's ink alone (normalize_ink; `seen` as there),
    or None for a picture already in MNIST form."""
    return None if is_mnist_form(gray) else normalize_ink(_enlarge_tiny(gray), seen)


def fit_frame(x: np.ndarray) -> np.ndarray:
    """One digit's ink alone (0 elsewhere) -> MNIST form: cropped to the ink, then `frame`."""
    rows = np.flatnonzero(x.any(axis=1))
    cols = np.flatnonzero(x.any(axis=0))
    if len(rows) == 0:
        raise PreprocessError("no digit found (blank or featureless image)")
    padded = np.zeros((rows[-1] - rows[0] + 1 + 2 * MARGIN, cols[-1] - cols[0] + 1 + 2 * MARGIN), np.float32)
    padded[MARGIN:-MARGIN, MARGIN:-MARGIN] = x[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return frame(padded)


_INDEX = np.arange(BOX)  # row and column numbers in the 20x20 box, for the centre of mass


def frame(padded: np.ndarray) -> np.ndarray:
    """One digit's ink cropped tight, in a border of MARGIN px of 0 -> MNIST form: stroke brought near
    MNIST's, fitted in 20x20 keeping the aspect ratio, placed in 28x28 by the centre of mass."""
    h, w = padded.shape[0] - 2 * MARGIN, padded.shape[1] - 2 * MARGIN
    scale = BOX / max(h, w)
    f = _stroke_filter(float(_stroke_width(padded > 0.5)), scale)
    x = (padded if f is None else extreme_filter(padded, *f))[MARGIN:-MARGIN, MARGIN:-MARGIN]
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.zeros((1, BOX, BOX), np.float32)
    small[0, :new_h, :new_w] = resize_lanczos(x, new_h, new_w)
    return _centred(small, [new_h], [new_w])[0]


def frame_all(stack: np.ndarray, sizes: list[tuple[int, int]]) -> np.ndarray:
    """`frame` of many digits at once: stack [N, H, W] float32 holds digit i's ink in
    stack[i, MARGIN : MARGIN + h, MARGIN : MARGIN + w] for (h, w) = sizes[i], 0 elsewhere -> [N, 28, 28].
    Array operations on the whole stack in place of a loop of small ones (a line's pieces are dozens)."""
    scales = [BOX / max(h, w) for h, w in sizes]
    x = _adjust_strokes(stack, scales)[:, MARGIN:, MARGIN:]  # beyond a digit's h x w its resampling weights are 0
    new_h = [max(1, round(h * s)) for (h, _), s in zip(sizes, scales)]
    new_w = [max(1, round(w * s)) for (_, w), s in zip(sizes, scales)]
    n, height, width = x.shape
    down = np.zeros((n, BOX, height))
    across = np.zeros((n, width, BOX))
    for i, (h, w) in enumerate(sizes):
        down[i, : new_h[i], :h] = lanczos_matrix(h, new_h[i])
        across[i, :w, : new_w[i]] = lanczos_matrix(w, new_w[i]).T
    return _centred((down @ x.astype(np.float64) @ across).astype(np.float32), new_h, new_w)


def _centred(small: np.ndarray, new_h: list[int], new_w: list[int]) -> np.ndarray:
    """Digits resampled into 20x20 [N, 20, 20] (digit i in its first new_h[i] x new_w[i], 0 beyond) ->
    [N, 28, 28]: negative lobes clipped, brightest ink 1, placed by the centre of mass."""
    np.maximum(small, 0.0, out=small)
    small *= (1.0 / np.maximum(small.max(axis=(1, 2)).astype(np.float64), 1e-6)).astype(np.float32)[:, None, None]
    rows, cols = small.sum(2), small.sum(1)
    total = rows.sum(1).astype(np.float64)
    cy, cx = (rows @ _INDEX) / total, (cols @ _INDEX) / total
    out = np.zeros((len(small), FRAME, FRAME), np.float32)
    for i, (h, w, y, c) in enumerate(zip(new_h, new_w, cy.tolist(), cx.tolist())):
        top = min(max(round(FRAME / 2 - 0.5 - y), 0), FRAME - h)
        left = min(max(round(FRAME / 2 - 0.5 - c), 0), FRAME - w)
        out[i, top : top + h, left : left + w] = small[i, :h, :w]
    return out


# the first bytes of the image formats a directory search picks up (Pillow reads them all)
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
              b"\x00\x00\x01\x00", b"\x00\x00\x00\x0cjP  ", b"\xffO\xffQ")


def looks_like_image(path: str | Path) -> bool:
    """An image by content: the first bytes of a format Pillow reads."""
    try:
        with open(path, "rb") as f:
            return is_image_head(f.read(16))
    except OSError:
        return False


def is_image_head(head: bytes) -> bool:
    """A file's first 16 bytes are those of a format Pillow reads (SIGNATURES; WebP: RIFF....WEBP; Netpbm: P1-P6)."""
    head = bytes(head[:16])
    netpbm = head[:1] == b"P" and head[1:2] in b"123456" and head[2:3] in (b" ", b"\t", b"\r", b"\n")
    return head.startswith(SIGNATURES) or netpbm or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


@dataclass
class Picture:
    """One picture read for the model: `pixels` (28x28 in the model's polarity) for one digit, or `line`
    (a segment.Lattice) for a line of digits; `digits`: how many digits the first look saw side by
    side; `error`: the one-line reason it could not be read (then neither is set)."""

    pixels: np.ndarray | None = None
    line: object = None
    digits: int = 0
    error: str | None = None
    again: object = None  # one narrow mark: its source, to read it as a line should the model find no digit in it
    box: list[int] | None = None  # one digit: the box of its ink, [x, y, w, h] in the input picture's pixels


def read_picture(source: str | Path | bytes | Image.Image, polarity: str = contract.POLARITY,
                 count: tuple[int, int] | None = None, as_line: bool = False) -> Picture:
    """One picture (a path, its bytes, or a decoded PIL image) -> a Picture: its digit, or its line
    of digits when it holds one and `count` (least, most digits) is not (1, 1), which reads one digit
    whatever the picture holds. One mark too narrow to be taken for a line keeps its source (`again`):
    `as_line` reads it again as a line, with cuts however narrow it is (see answers.for_prepared).
    PreprocessError (one line) when it cannot be read."""
    seen = Seen()
    im = source if isinstance(source, Image.Image) else open_image(source)
    gray = decoded_gray(im)
    ink = first_look(gray, seen)
    if ink is None:
        return Picture(_polarity(gray.astype(np.float32), polarity), digits=seen.digits, box=picture_box(gray, seen, im))
    from edgemnist import segment  # segment builds on this module

    held = count is not None and count[0] > 1  # the user knows it holds several digits, however narrow
    line = count != (1, 1) and (held or as_line or segment.is_line(seen.digits, seen.box))
    several = line and (seen.digits > 1 or held)  # the first look or the count says so: no one-digit answer to frame
    pixels = None if several else _polarity(fit_frame(ink), polarity)
    if not line:
        return Picture(pixels, digits=seen.digits, again=source if count != (1, 1) and seen.digits == 1 else None,
                       box=picture_box(gray, seen, im))
    lat = segment.line_of(source, gray, seen, im, cut_every=held or as_line)
    for reading in lat.readings():
        reading.pieces = _polarity(reading.pieces, polarity)
    lat.single = pixels  # one wide mark: read as one digit, today's answer
    return Picture(line=lat, digits=seen.digits)


def picture_box(first: np.ndarray, seen: Seen, im: Image.Image) -> list[int]:
    """The ink the first look kept (`seen.extent`, in the enlarged working picture's pixels; none: a
    picture already in MNIST form, all of it) -> [x, y, w, h] in the input picture's pixels. `first`:
    the working picture, decoded from `im`."""
    s = im.info.get(DECODED_SCALE, 1.0)  # the file's pixels per pixel of im
    if seen.extent is None:
        return [0, 0, round(im.width * s), round(im.height * s)]
    tiny = min(1.0, max(first.shape) / MIN_SIDE)  # seen's boxes are in the enlarged tiny picture's pixels
    top, left, bottom, right = (v * tiny for v in seen.extent)
    fy, fx = im.height / first.shape[0] * s, im.width / first.shape[1] * s
    return [int(left * fx), int(top * fy), max(1, round((right + 1 - left) * fx)), max(1, round((bottom + 1 - top) * fy))]


def prepare(items: list[tuple[str | bytes, bool]], polarity: str = contract.POLARITY,
            count: tuple[int, int] | None = None) -> list[Picture | None]:
    """`read_picture` of each (path or bytes, only if an image), errors kept as data: the unit of work
    of `infer`'s worker processes and the Ray readers. None, no result at all, for an item that
    `only_images` and is no image (a file found in a directory, not named)."""
    return [_prepare_one(source, polarity, only_images, count) for source, only_images in items]


def _prepare_one(source: str | Path | bytes, polarity: str, only_images: bool, count: tuple[int, int] | None) -> Picture | None:
    if only_images:
        is_bytes = isinstance(source, (bytes, bytearray, memoryview))
        if not (is_image_head(source[:16]) if is_bytes else looks_like_image(source)):
            return None
    try:
        return read_picture(source, polarity, count)
    except PreprocessError as e:
        return Picture(error=str(e))


def preprocess(path: str | Path, polarity: str = contract.POLARITY, seen: Seen | None = None) -> np.ndarray:
    """Image file -> float32 [28, 28] in [0, 1] in the polarity the model's metadata asks for
    (`seen`: see `to_mnist`)."""
    return _polarity(to_mnist(load_gray(path), seen), polarity)


def _polarity(x: np.ndarray, polarity: str) -> np.ndarray:
    """MNIST form (light ink on 0) -> the polarity the model's metadata asks for."""
    return 1.0 - x if polarity == "dark-on-light" else x
