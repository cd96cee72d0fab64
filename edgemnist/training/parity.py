"""The parity gate: the checkpoint through torch vs the ONNX models through onnxruntime, on all
10,000 MNIST test images.  [train side]"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from edgemnist import metrics, runtime
from edgemnist.contract import images_to_pixels
from edgemnist.cpu import cpu_info
from edgemnist.settings import Thresholds
from edgemnist.training.model import MLP
from edgemnist.training.quantize import saturation_report
from edgemnist.training.train import predict
from edgemnist.verify import compare, reference_failures, reference_semantics


def torch_logits(model: MLP, pixels: np.ndarray) -> np.ndarray:
    return predict(model, torch.from_numpy(pixels)).numpy()


def batch_invariance(model: runtime.Model, pixels: np.ndarray, whole: np.ndarray) -> float:
    """Max |difference| between running each image alone (batch 1) and the whole set in one batch."""
    name = model.input_name
    single = np.concatenate([model.session.run(None, {name: pixels[i : i + 1]})[0] for i in range(len(pixels))])
    return float(np.abs(single - whole).max())


def check_model(
    torch_out: np.ndarray, path: Path, pixels: np.ndarray, labels: np.ndarray, provider: str = "cpu"
) -> tuple[dict, np.ndarray]:
    """Run one ONNX model on the whole set (one batch of N, and N batches of 1) and compare.
    Returns the row and the model's logits."""
    model = runtime.open_model(path, provider, quiet=True)
    whole = model.logits(pixels, batch_size=len(pixels))
    row = compare(torch_out, whole, labels)
    row["batch1_max_diff"] = batch_invariance(model, pixels, whole)
    row["calibration"] = metrics.calibration_error(whole, labels)
    row |= {"path": str(path), "size_bytes": path.stat().st_size, "providers": model.providers}
    return row, whole


def verdicts(torch_acc: float, fp32: dict, int8: dict | None, t: Thresholds, int8_dynamic: bool = False) -> dict[str, list[str]]:
    """Each model's failed checks, named with their values: {"fp32": [...], "int8": [...]} (no "int8"
    key without an int8 model); empty lists when everything passed."""
    out = {"fp32": []}
    if fp32["agreement"] < t.fp32_min_agreement:
        out["fp32"].append(f"fp32 top-1 agreement {fp32['agreement']:.4%} < {t.fp32_min_agreement:.4%}")
    if fp32["max_abs_dlogit"] > t.fp32_max_abs_dlogit:
        out["fp32"].append(f"fp32 max |Δlogit| {fp32['max_abs_dlogit']:.2e} > {t.fp32_max_abs_dlogit:.0e}")
    if fp32["batch1_max_diff"] > t.batch_max_diff:
        out["fp32"].append(f"fp32 batch-1 vs batch-N max diff {fp32['batch1_max_diff']:.2e} > {t.batch_max_diff:.0e}")
    if int8 is not None:
        out["int8"] = []
        drop = (torch_acc - int8["accuracy"]) * 100
        if drop > t.int8_max_drop_pp:
            out["int8"].append(f"int8 accuracy drop {drop:.2f} pp > {t.int8_max_drop_pp} pp")
        if int8["agreement"] < t.int8_min_agreement:
            out["int8"].append(f"int8 top-1 agreement {int8['agreement']:.2%} < {t.int8_min_agreement:.2%}")
        # dynamic quantization picks activation scales per batch: batch-1 and batch-N differ by design
        if not int8_dynamic and int8["batch1_max_diff"] > t.batch_max_diff:
            out["int8"].append(f"int8 batch-1 vs batch-N max diff {int8['batch1_max_diff']:.2e} > {t.batch_max_diff:.0e}")
        out["int8"] += reference_failures(int8["reference"], t)
    return out


def gate(torch_acc: float, fp32: dict, int8: dict | None, t: Thresholds, int8_dynamic: bool = False) -> list[str]:
    """Every model's failed checks in one list (`verdicts`, flattened); empty when everything passed."""
    return [f for failures in verdicts(torch_acc, fp32, int8, t, int8_dynamic).values() for f in failures]


def run(
    model: MLP,
    images: np.ndarray,
    labels: np.ndarray,
    fp32_path: Path,
    int8_path: Path | None,
    thresholds: Thresholds = Thresholds(),
    *,
    int8_dynamic: bool = False,
    provider: str = "cpu",
) -> dict:
    """The whole parity report for one checkpoint and its ONNX model(s)."""
    pixels = images_to_pixels(images)
    labels = labels.astype(np.int64)
    reference = torch_logits(model, pixels)
    torch_acc = float((reference.argmax(1) == labels).mean())
    fp32, _ = check_model(reference, fp32_path, pixels, labels, provider)
    int8 = None
    if int8_path:
        int8, fused = check_model(reference, int8_path, pixels, labels, provider)
        int8["accuracy_drop_pp"] = (torch_acc - int8["accuracy"]) * 100
        int8["reference"] = reference_semantics(int8_path, fused, pixels, labels)
        int8["saturation"] = saturation_report(onnx.load(int8_path))
    by_model = verdicts(torch_acc, fp32, int8, thresholds, int8_dynamic)
    for precision, row in (("fp32", fp32), ("int8", int8)):
        if row is not None:
            row["failures"] = by_model[precision]
    failures = [f for fs in by_model.values() for f in fs]
    return {
        "n": int(len(labels)),
        "onnxruntime": ort.__version__,
        "cpu": cpu_info(),
        "torch": {"accuracy": torch_acc, "calibration": metrics.calibration_error(reference, labels)},
        "fp32": fp32,
        "int8": int8,
        "thresholds": asdict(thresholds),
        "failures": failures,
        "passed": not failures,
    }
