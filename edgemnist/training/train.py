"""Training loop and checkpoint save/load.  [train side]

Recipe (measured, see docs/design.md and docs/benchmarks.md): batch-norm MLP, SGD with Nesterov momentum under a one-cycle LR
schedule, label smoothing, and light random affine augmentation done on whole batches on the fly
(one affine_grid + grid_sample per batch, no per-sample PIL work), and pen-stroke digits in forms
MNIST rarely has mixed into the training set (`variants.py`).
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgemnist import UserError, __version__, atomic, data, first_line
from edgemnist.contract import images_to_pixels
from edgemnist.settings import PROVIDERS, MLPConfig, TrainConfig
from edgemnist.training import fragments, variants
from edgemnist.training.model import MLP

CHECKPOINT_FORMAT = "edgemnist-checkpoint/1"


def pick_device(device: str) -> torch.device:
    """'auto' -> CUDA when torch sees it, else CPU; 'cuda' without CUDA is a UserError (exit 2)."""
    if device not in PROVIDERS:
        raise UserError(f"--device must be one of {', '.join(PROVIDERS)}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: torch sees no CUDA device (use --device cpu or auto)")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float32 [N, 1, 28, 28] in [0, 1] (the model's input contract)."""
    return torch.from_numpy(images_to_pixels(images)).to(device)


def augment(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Random rotation, scale and translation for a whole batch at once."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=gen, device=x.device) * 2 - 1
    angle = u[:, 0] * math.radians(cfg.rotate_deg)
    scale = 1 + u[:, 1] * cfg.scale
    shift = u[:, 2:] * (2 * cfg.translate_px / x.shape[-1])
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """Logits for x, in eval mode, in batches."""
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def _loss(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Cross-entropy with label smoothing; a piece that is no digit (fragments.NO_DIGIT) against the
    uniform distribution, so the model learns to spread its probability there."""
    k = logits.shape[1]
    target = torch.full_like(logits, smoothing / k)
    digit = labels >= 0
    target[digit, labels[digit]] += 1 - smoothing
    target[~digit] = 1.0 / k
    return -(target * F.log_softmax(logits, 1)).sum(1).mean()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(1) == labels).float().mean().item()


def training_data(cfg: TrainConfig, dev: torch.device, data_dir: str | None = None):
    """((x, y) to train on, (x, y) of the test set, how many MNIST images are trained on): MNIST's
    training set minus the seeded hold-out (it fits the temperature), plus the pen-stroke variants."""
    mnist = data.load(data_dir)
    kept, _ = data.holdout_split(len(mnist.train_labels), cfg.holdout, cfg.seed)
    images, labels = mnist.train_images[kept], mnist.train_labels[kept]
    if cfg.variants:
        drawn, drawn_labels = variants.render(cfg.variants, cfg.seed)
        images, labels = np.concatenate([images, drawn]), np.concatenate([labels, drawn_labels])
    if cfg.fragments:  # from the kept MNIST images only: the hold-out stays unseen
        cut, cut_labels = fragments.render(mnist.train_images[kept], cfg.fragments, cfg.seed)
        images, labels = np.concatenate([images, cut]), np.concatenate([labels.astype(np.int64), cut_labels])

    def pair(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return to_tensor(x, dev), torch.from_numpy(y.astype(np.int64)).to(dev)

    return pair(images, labels), pair(mnist.test_images, mnist.test_labels), int(len(kept))


def train(
    model_config: MLPConfig,
    cfg: TrainConfig,
    *,
    device: str | torch.device = "auto",
    data_dir: str | None = None,
    on_epoch=None,
) -> tuple[MLP, dict]:
    """Train on the MNIST training set minus `cfg.holdout` held-out images, plus `cfg.variants` pen-stroke
    digits in forms MNIST rarely has; returns the model and its metrics (test accuracy each epoch).

    `on_epoch(epoch, loss, test_accuracy)` is called after each epoch (progress display).
    Same seed and device -> same weights.
    """
    start = time.perf_counter()
    dev = device if isinstance(device, torch.device) else pick_device(device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    (x_train, y_train), (x_test, y_test), n_mnist = training_data(cfg, dev, data_dir)

    model = MLP(model_config).to(dev)
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
    )
    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.25
    )
    history = []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=gen, device=dev)
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            xb = augment(x_train[idx], cfg, gen)
            loss = _loss(model(xb), y_train[idx], cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        acc = accuracy(predict(model, x_test), y_test)
        history.append({"epoch": epoch, "loss": total / len(x_train), "test_accuracy": acc})
        if on_epoch:
            on_epoch(epoch, total / len(x_train), acc)
    model = model.cpu().eval()
    metrics = {
        "test_accuracy": history[-1]["test_accuracy"],
        "seconds": time.perf_counter() - start,
        "epochs": cfg.epochs,
        "trained_on": n_mnist,
        "variants": cfg.variants,
        "fragments": cfg.fragments,
        "device": str(dev),
        "history": history,
    }
    return model, metrics


def save_checkpoint(path: str | Path, model: MLP, cfg: TrainConfig, metrics: dict) -> None:
    """Write the checkpoint atomically. The config carries the architecture and the normalization,
    the train config the seed."""
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "train_config": asdict(cfg),
        "metrics": metrics,
        "versions": {"torch": str(torch.__version__), "edgemnist": __version__},
    }
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic.write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> tuple[MLP, dict]:
    """Load with weights_only=True (a crafted file cannot run code); UserError on anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found (train one with `edgemnist train`)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for truncated/garbage files
        raise UserError(f"{path} is not a readable edgemnist checkpoint ({type(e).__name__}: {first_line(e)[:120]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not an edgemnist checkpoint (expected format {CHECKPOINT_FORMAT})")
    config = MLPConfig.from_dict(ckpt["config"])
    model = MLP(config)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise UserError(f"{path}: config does not match the weights ({first[:160]})") from None
    return model.eval(), ckpt
