"""What a model's answers on labelled images measure: accuracy per class, the confusion matrix, and the
expected calibration error. Shared by `eval` and export's parity gate; numpy only.
"""

from __future__ import annotations

import numpy as np

from edgemnist import runtime
from edgemnist.settings import ECE_BINS


def calibration_error(logits: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> dict:
    """Expected calibration error (equal-width confidence bins; |accuracy - confidence| weighted by
    each bin's share of images) and the confidence the model shows."""
    probs = runtime.softmax(logits.astype(np.float64))
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    ece = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return {"ece": float(ece), "bins": bins, "mean_confidence": float(confidence.mean()),
            "median_confidence": float(np.median(confidence))}


def classification_report(predictions: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, per-class accuracy and the 10x10 confusion matrix (rows = true label)."""
    labels = labels.astype(np.int64)
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predictions.astype(np.int64)), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "accuracy": float((predictions == labels).mean()) if len(labels) else 0.0,
        "n": int(len(labels)),
        "per_class": [round(float(p), 6) for p in per_class],
        "confusion": confusion.tolist(),
    }

