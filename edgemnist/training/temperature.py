"""Temperature scaling: one number that makes the model's confidence mean what it says.  [train side]

Label smoothing trains the MLP to stop short of full confidence (a crisp digit shows ~91%). Dividing
the logits by a temperature T fitted on held-out training images (minimum negative log-likelihood)
fixes that without changing any prediction. T is folded into the last Linear layer, so the PyTorch
model and the ONNX graph stay one and the same function and the parity gate is unchanged.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from edgemnist import UserError, data
from edgemnist.contract import images_to_pixels
from edgemnist.training.model import MLP
from edgemnist.training.train import predict


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """The T in [lo, hi] minimizing the negative log-likelihood of softmax(logits / T) (golden-section
    search on log T; the NLL is unimodal in T)."""
    logits, labels = logits.astype(np.float64), labels.astype(np.int64)
    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(logits, labels, math.exp(c)), nll(logits, labels, math.exp(d))
    while b - a > 1e-6:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(logits, labels, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(logits, labels, math.exp(d))
    return math.exp((a + b) / 2)


@torch.no_grad()
def with_temperature(model: MLP, temperature: float) -> MLP:
    """A copy of the model whose logits are the original's divided by `temperature`."""
    scaled = copy.deepcopy(model).eval()
    last = scaled.layers[-1]
    last.weight.div_(temperature)
    last.bias.div_(temperature)
    return scaled


def fold_temperature(model: MLP, train_config: dict, images: np.ndarray, labels: np.ndarray) -> tuple[MLP, dict]:
    """Fit the temperature on the checkpoint's held-out training images (the seeded split `train`
    kept out) -> (the calibrated model, what to record). UserError when the checkpoint has none."""
    holdout = int(train_config.get("holdout", 0))
    if holdout == 0:
        raise UserError("the checkpoint has no held-out training images to fit the confidence temperature on "
                        "(trained with --holdout 0, or by an edgemnist that held none out): retrain, or export with --no-temperature")
    _, idx = data.holdout_split(len(labels), holdout, int(train_config["seed"]))
    logits = predict(model, torch.from_numpy(images_to_pixels(images[idx]))).numpy()
    temperature = fit_temperature(logits, labels[idx])
    return with_temperature(model, temperature), {"temperature": temperature, "fitted_on": f"{holdout} held-out training images"}
