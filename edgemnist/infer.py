"""`edgemnist infer`: image files -> digits, through onnxruntime.  [runtime side]"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from edgemnist import atomic, contract, runtime
from edgemnist.preprocess import PreprocessError, preprocess
from edgemnist.settings import DEFAULT_INT8, DEFAULT_ONNX


def default_model_path() -> Path:
    """exported/mlp.int8.onnx, else exported/mlp.onnx (working directory), else the packaged int8 model."""
    for candidate in (DEFAULT_INT8, DEFAULT_ONNX):
        if candidate.is_file():
            return candidate
    return Path(str(resources.files("edgemnist.pretrained") / "mlp.int8.onnx"))


def classify(
    model: runtime.Model, paths: list[str], *, top_k: int = 3, save_dir: str | Path | None = None
) -> list[dict]:
    """One result per path, in order: {"path", "label", "confidence", "sure", "probabilities", "top_k"}
    or {"path", "error"}. Every image is tried; one that fails does not stop the others. `sure` is
    False below the model's "not sure" confidence (`Model.not_sure_below`) and for a picture of
    several digits side by side (then "note" says so)."""
    polarity = model.metadata_json("edgemnist.input", {}).get("polarity", contract.POLARITY)
    not_sure_below = model.not_sure_below
    results: list[dict | None] = [None] * len(paths)
    pixels, where, digits = [], [], []
    for i, path in enumerate(paths):
        notes: dict = {}
        try:
            pixels.append(preprocess(path, polarity, notes))
            where.append(i)
            digits.append(notes.get("digits", 1))
        except PreprocessError as e:
            results[i] = {"path": path, "error": str(e)}
    taken: set[str] = set()  # names written by this run: a/1.png and b/1.jpg must not share one
    if pixels:
        batch = np.stack(pixels)[:, None].astype(np.float32)
        probs = runtime.softmax(model.logits(batch).astype(np.float64))
        for i, p, img, n in zip(where, probs, pixels, digits):
            order = np.argsort(-p)[:top_k]
            results[i] = {
                "path": paths[i],
                "label": int(order[0]),
                "confidence": float(p[order[0]]),
                "sure": bool(p[order[0]] >= not_sure_below and n <= 1),
                "probabilities": [float(v) for v in p],
                "top_k": [[int(d), float(p[d])] for d in order],
            }
            if n > 1:
                results[i]["note"] = f"{n} digits side by side: crop to one"
            if save_dir is not None:
                results[i]["preprocessed"] = str(save_preprocessed(img, paths[i], Path(save_dir), taken))
    return results


def save_preprocessed(img: np.ndarray, source: str, save_dir: Path, taken: set[str] | None = None) -> Path:
    """Write the 28x28 image the model saw as <stem>.28x28.png; a stem already written by this run
    (`taken`) gets -2, -3, ... so no result's file is overwritten by another's."""
    taken = set() if taken is None else taken
    stem, n = Path(source).stem, 1
    name = f"{stem}.28x28.png"
    while name in taken:
        n += 1
        name = f"{stem}-{n}.28x28.png"
    taken.add(name)
    out = save_dir / name
    with atomic.atomic_path(out) as tmp:
        Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8), mode="L").save(tmp, format="PNG")
    return out
