"""The Python API: `edgemnist.load()` -> a Classifier that takes any picture.  [runtime side]

    model = edgemnist.load()                     # or load("runs/mlp.int8.onnx", provider="cpu")
    model.classify("digit.png").label            # a path -> one Result
    model.classify("zip.png", digits=5).number   # a line of digits: one number, each digit with its box
    model.classify(open("digit.png", "rb").read())   # the file's bytes: nothing touches the disk
    model.classify(pil_image)                    # a PIL image
    model.classify(frame)                        # numpy H x W gray or H x W x 3/4, uint8 or float in [0, 1]
    model.classify_batch([a, b, c])              # a list of any of these -> a list of Results, one model call
    model.classify_batch(batch)                  # numpy N x 28 x 28 already in the MNIST contract -> a list
    model.logits(pixels)                         # the raw contract: float32 [N, 1, 28, 28] in [0, 1]

Pictures go through the same preprocessing as `edgemnist infer`; an N x 28 x 28 (or N x 1 x 28 x 28)
array given to `classify_batch` is taken as MNIST-form digits (light on dark, the model's contract)
and goes straight to the model. Each call returns one type: `classify` a Result, `classify_batch` a
list of them. Errors are exceptions with the CLI's one-line messages: ImageError (this picture),
InputError (what was passed), ModelError (the model), all UserError.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from edgemnist import ImageError, InputError, contract, runtime
from edgemnist.answers import answer, for_prepared
from edgemnist.preprocess import Picture, read_picture


@dataclass(frozen=True)
class Candidate:
    """One of a picture's most probable digits."""

    digit: int
    probability: float


@dataclass(frozen=True)
class Digit:
    """One digit of a number: its label, calibrated confidence, whether to trust it, and most probable digits."""

    label: int
    confidence: float
    sure: bool
    top_k: list[Candidate]  # most probable first
    box: tuple[int, int, int, int] | None = None  # x, y, w, h in the picture's pixels (none for a 28x28 batch)


@dataclass(frozen=True)
class Result:
    """What a picture shows: one digit (the label, its calibrated confidence, whether to trust it, all
    ten probabilities) and the number it makes, digit by digit, with each digit's box in the picture."""

    label: int | None  # None for a number of several digits
    confidence: float  # a number's: the product of its digits'
    sure: bool
    probabilities: list[float]  # empty for a number of several digits
    top_k: list[Candidate]  # most probable first; empty for a number of several digits
    note: str | None = None  # why not sure, when it is not the confidence (several digits side by side)
    number: str = ""
    digits: list[Digit] = field(default_factory=list)

    @classmethod
    def from_answer(cls, a: dict) -> Result:
        digits = [Digit(**(d | {"top_k": [Candidate(k, p) for k, p in d["top_k"]], "box": tuple(d["box"]) if "box" in d else None}))
                  for d in a["digits"]]
        return cls(label=a["label"], confidence=a["confidence"], sure=a["sure"], probabilities=a.get("probabilities", []),
                   top_k=[Candidate(d, p) for d, p in a.get("top_k", [])], note=a.get("note"), number=a["number"], digits=digits)


class Classifier:
    """An edgemnist model opened with onnxruntime; see the module's docstring."""

    def __init__(self, model: runtime.Model):
        self.model = model
        self.path = model.path

    def __repr__(self) -> str:
        return f"Classifier({str(self.path)!r}, providers={self.model.providers})"

    def logits(self, pixels) -> np.ndarray:
        """The model's contract, raw: [N, 1, 28, 28] or [N, 28, 28] (float in [0, 1] or uint8) -> float32 [N, 10].
        A uint8-input model (`export --input uint8`) takes uint8 pixels as they are."""
        return self.model.logits(_contract_batch(pixels, keep_uint8=self.model.takes_uint8))

    def classify(self, x, top_k: int = 3, digits: int | tuple[int, int] | None = None) -> Result:
        """One picture -> its Result; a line of digits is read as one number (`Result.number`, `.digits`).
        `digits`: how many it holds (5, or (2, 6)); 1 reads one digit whatever it holds. A list of
        pictures or a contract batch: `classify_batch`."""
        if isinstance(x, (list, tuple)) or _is_contract_batch(x):
            raise InputError("classify takes one picture: give a list or an N x 28 x 28 batch to classify_batch")
        count = _count(digits)
        return self._answer([self._read(x, count)], top_k, count)[0]

    def classify_batch(self, xs, top_k: int = 3, digits: int | tuple[int, int] | None = None) -> list[Result]:
        """A list of pictures (any form `classify` takes), or an N x 28 x 28 (N x 1 x 28 x 28) array in the
        MNIST contract -> one Result each, in order, the model run once."""
        if _is_contract_batch(xs):
            batch = _contract_batch(xs)[:, 0]
            return [Result.from_answer(a) for a in answer(self.model, batch, [1] * len(batch), top_k)]
        if not isinstance(xs, (list, tuple)):
            raise InputError("classify_batch takes a list of pictures or an N x 28 x 28 array: give one picture to classify")
        count = _count(digits)
        prepared = []
        for i, item in enumerate(xs):
            try:
                prepared.append(self._read(item, count))
            except (ImageError, InputError) as e:
                raise type(e)(f"item {i}: {e}") from None
        return self._answer(prepared, top_k, count)

    def _answer(self, prepared: list[Picture], top_k: int, count: tuple[int, int] | None) -> list[Result]:
        rows = for_prepared(self.model, [""] * len(prepared), prepared, top_k, count)
        out = []
        for i, a in enumerate(rows):
            if "error" in a:  # no parse with the digits asked for
                raise ImageError(a["error"] if len(prepared) == 1 else f"item {i}: {a['error']}")
            out.append(Result.from_answer(a))
        return out

    def _read(self, x, count: tuple[int, int] | None) -> Picture:
        """One picture, any form `classify` takes -> its preprocess.Picture."""
        source = _source(x)
        try:
            return read_picture(source, self.model.polarity, count)
        except ImageError as e:
            if isinstance(source, Path):
                raise type(e)(f"{x}: {e}") from None
            raise


def _count(digits: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """`digits` as (least, most); InputError when it is no count."""
    if digits is None:
        return None
    low, high = (digits, digits) if isinstance(digits, int) else tuple(digits)
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
        raise InputError(f"digits is a count (5) or a range (2, 6), the smaller first: got {digits!r}")
    return low, high


def _is_contract_batch(x) -> bool:
    side = contract.IMAGE_SIZE
    return isinstance(x, np.ndarray) and (x.ndim == 4 or (x.ndim == 3 and x.shape[1:] == (side, side)))


def _source(x):
    """Any one picture -> what preprocess.read_picture takes: bytes, a Path, or a PIL image."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    if isinstance(x, (str, os.PathLike)):
        return Path(x)
    if isinstance(x, Image.Image):
        if x.width * x.height == 0:
            raise ImageError("empty image")
        return x
    if isinstance(x, np.ndarray):
        return Image.fromarray(_as_uint8(x))
    raise InputError(f"cannot classify a {type(x).__name__}: give a path, bytes, a PIL image or a numpy array")


def _as_uint8(a: np.ndarray) -> np.ndarray:
    """An H x W or H x W x 3/4 picture, uint8 or float in [0, 1] -> uint8 for Pillow."""
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or min(a.shape[:2]) == 0:
        raise InputError(f"an array picture is H x W or H x W x 3/4 (or a batch N x 28 x 28), got shape {a.shape}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    return np.round(_unit_float(a) * 255).astype(np.uint8)


def _unit_float(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"arrays are uint8 or float in [0, 1], got {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if a.size and not (np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1):
        raise InputError("float arrays must hold values in [0, 1] (uint8 arrays are scaled by 1/255)")
    return a


def _contract_batch(pixels, keep_uint8: bool = False) -> np.ndarray:
    """[N, 1, 28, 28] or [N, 28, 28], uint8 or float in [0, 1] -> float32 [N, 1, 28, 28] (uint8 ones
    left as they are with `keep_uint8`)."""
    try:
        a = np.asarray(pixels)
    except (ValueError, TypeError):  # a ragged list: numpy refuses to make one array of it
        raise InputError("the model's input is N x 1 x 28 x 28 or N x 28 x 28: got a list of unequal shapes") from None
    side = contract.IMAGE_SIZE
    if a.ndim == 3 and a.shape[1:] == (side, side):
        a = a[:, None]
    if a.ndim != 4 or a.shape[1:] != (1, side, side):
        raise InputError(f"the model's input is N x 1 x 28 x 28 or N x 28 x 28, got shape {a.shape}")
    if keep_uint8 and a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    return np.ascontiguousarray(_unit_float(a), dtype=np.float32)


def load(path: str | os.PathLike | None = None, provider: str = "auto", threads: int | None = None) -> Classifier:
    """See `edgemnist.load`."""
    return Classifier(runtime.open_model(path or runtime.default_model_path(), provider, threads, quiet=True))
