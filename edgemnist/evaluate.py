"""`edgemnist eval`: accuracy, per-class accuracy and confusion matrix on the full MNIST test set.

An .onnx model runs through onnxruntime (torch is never imported); a .pt checkpoint through torch.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from edgemnist import UserError, atomic, data, metrics, runtime
from edgemnist.contract import images_to_pixels


def evaluate(
    model_path: str | Path,
    *,
    provider: str = "auto",
    threads: int | None = None,
    data_dir: str | None = None,
    quiet: bool = False,
    allow_failed_gate: bool = False,
) -> dict:
    path = Path(model_path)
    if not path.exists():
        raise UserError(f"model {path} not found")
    start = time.perf_counter()
    mnist = data.load(data_dir, quiet=quiet)
    pixels = images_to_pixels(mnist.test_images)
    if path.suffix == ".pt":
        if provider == "cuda":
            raise UserError("--provider applies to .onnx models; a .pt checkpoint is evaluated by torch on CPU")
        try:
            from edgemnist.training.parity import torch_logits
            from edgemnist.training.train import load_checkpoint
        except ImportError:
            raise UserError("evaluating a .pt checkpoint needs torch: pip install 'edgemnist[train]'") from None
        model, _ = load_checkpoint(path)
        logits, providers, backend = torch_logits(model, pixels), ["torch-cpu"], "torch"
        identity = {"precision": "checkpoint", "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    else:
        model = runtime.open_model(path, provider, threads, quiet=quiet, allow_failed_gate=allow_failed_gate)
        logits, providers, backend = model.logits(pixels, batch_size=len(pixels)), model.providers, "onnxruntime"
        identity = {"precision": model.precision, "sha256": model.sha256}
    report = metrics.classification_report(logits.argmax(1), mnist.test_labels)
    report["calibration"] = metrics.calibration_error(logits, mnist.test_labels.astype(np.int64))
    report |= {"model": str(path), **identity, "backend": backend, "providers": providers, "seconds": time.perf_counter() - start}
    return report


def plot_confusion(report: dict, out: str | Path) -> None:
    """A confusion-matrix picture (needs matplotlib: pip install 'edgemnist[plot]')."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'edgemnist[plot]'") from None
    confusion = np.array(report["confusion"])
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=120)
    shown = np.log1p(confusion)
    im = ax.imshow(shown, cmap="Blues")
    for (i, j), v in np.ndenumerate(confusion):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if shown[i, j] > shown.max() / 2 else "black")
    ax.set_xticks(range(10)), ax.set_yticks(range(10))
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    ax.set_title(f"{Path(report['model']).name}: accuracy {report['accuracy']:.2%} (n={report['n']})")
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    with atomic.atomic_path(out) as tmp:
        fig.savefig(tmp, format=Path(out).suffix.lstrip(".") or "png")
    plt.close(fig)
