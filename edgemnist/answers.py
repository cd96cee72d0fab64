"""Preprocessed pictures -> answers: the model call, calibrated probabilities, the "not sure" rule.  [runtime side]

One place for what `infer`, the Python API and the Ray reader say about a picture, so the three give
the same answer to the same file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from edgemnist import runtime


def answer(model: runtime.Model, pixels: np.ndarray, digits: list[int], top_k: int = 3) -> list[dict]:
    """The model's answers for preprocessed pictures [N, 28, 28]: label, confidence, sure, probabilities,
    top_k (and a note when a picture held several digits side by side: `digits`, per image). `sure`
    is False below the model's "not sure" confidence and for several digits. The softmax and the
    ranking run on Python floats: for one picture (the API's case) a dozen numpy calls on ten values
    cost more than the model call's own overhead (measured: 20-40 µs of ~100 µs after a preprocessing)."""
    not_sure_below = model.not_sure_below
    out = []
    for row, n in zip(model.logits(pixels[:, None]).tolist(), digits):
        p = softmax_row(row)
        top = sorted(range(len(p)), key=p.__getitem__, reverse=True)[:top_k]  # stable: ties keep digit order
        result = {"label": top[0], "confidence": p[top[0]], "sure": p[top[0]] >= not_sure_below and n <= 1,
                  "probabilities": p, "top_k": [[d, p[d]] for d in top]}
        if n > 1:
            result["note"] = f"{n} digits side by side: crop to one"
        out.append(result)
    return out


def softmax_row(logits: list[float]) -> list[float]:
    """runtime.softmax of one row, in float64, on Python floats."""
    top = max(logits)
    e = [math.exp(v - top) for v in logits]
    total = sum(e)
    return [v / total for v in e]


def for_prepared(model: runtime.Model, names: Sequence[str], prepared: Sequence[tuple | None], top_k: int = 3) -> Iterator[dict]:
    """`preprocess.prepare`'s output for one chunk -> one result per picture, in order, the model run
    once on the chunk: {"path", "label", "confidence", "sure", "probabilities", "top_k"[, "note"]} or
    {"path", "error"}; files skipped as no image (None) get none. "pixels" carries what the model saw."""
    good = [j for j, p in enumerate(prepared) if p is not None and p[0] is not None]
    answers = {}
    if good:
        batch = np.stack([prepared[j][0] for j in good])
        answers = dict(zip(good, answer(model, batch, [prepared[j][1] for j in good], top_k)))
    for j, (name, p) in enumerate(zip(names, prepared)):
        if p is None:
            continue
        pixels, _, error = p
        yield {"path": name, "error": error} if error is not None else {"path": name} | answers[j] | {"pixels": pixels}
