"""`edgemnist verify MODEL`: on the device it runs on, is this still the model that was approved?
[runtime side: onnxruntime + numpy, never torch]

Runs MODEL on the 10,000 MNIST test images with this device's real kernels (the default session, the
one `infer` and `eval` use) and checks
  (a) accuracy against the accuracy recorded in the model's metadata at export, and
  (b) agreement with the model's reference semantics: the same file with graph optimizations off, where
      an int8 QDQ model runs as QuantizeLinear/DequantizeLinear around float ops, the same on every CPU.
An int8 model whose weights let the CPU's integer kernels saturate (x86 without VNNI) fails (b).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgemnist import data, runtime, signing
from edgemnist.contract import images_to_pixels
from edgemnist.cpu import cpu_info
from edgemnist.settings import Thresholds


def compare(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy of `candidate`, its top-1 agreement with `reference`, and |Δlogit| statistics."""
    delta = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    pred = candidate.argmax(1)
    return {
        "accuracy": float((pred == labels).mean()),
        "agreement": float((pred == reference.argmax(1)).mean()),
        "disagreements": int((pred != reference.argmax(1)).sum()),
        "max_abs_dlogit": float(delta.max()),
        "mean_abs_dlogit": float(delta.mean()),
    }


def reference_semantics(path: Path, fused: np.ndarray, pixels: np.ndarray, labels: np.ndarray) -> dict:
    """The model with graph optimizations off (CPU-independent reference semantics) against `fused`,
    this device's output: the reference's accuracy, top-1 agreement and |Δlogit|."""
    # the caller opened this model first: its gate mark has been checked (or overridden) there
    reference = runtime.open_model(path, "cpu", quiet=True, reference=True, allow_failed_gate=True).logits(pixels, batch_size=len(pixels))
    row = compare(reference, fused, labels)
    return {
        "accuracy": float((reference.argmax(1) == labels).mean()),
        "agreement": row["agreement"],
        "max_abs_dlogit": row["max_abs_dlogit"],
        "mean_abs_dlogit": row["mean_abs_dlogit"],
    }


def reference_failures(ref: dict, t: Thresholds, prefix: str = "int8") -> list[str]:
    """The fused-vs-reference checks, shared by the parity gate and `verify`."""
    failures = []
    what = f"{prefix} fused kernels vs reference semantics"
    if ref["agreement"] < t.reference_min_agreement:
        failures.append(f"{what}: top-1 agreement {ref['agreement']:.2%} < {t.reference_min_agreement:.2%}")
    if ref["max_abs_dlogit"] > t.reference_max_abs_dlogit:
        failures.append(f"{what}: max |Δlogit| {ref['max_abs_dlogit']:.3g} > {t.reference_max_abs_dlogit:g}")
    return failures


def recorded(model: runtime.Model) -> tuple[str | None, float | None, dict | None]:
    """(precision, accuracy recorded at export, where it was recorded) from edgemnist metadata."""
    precision = model.metadata.get("edgemnist.precision")
    accuracy = model.recorded_accuracy(precision) if precision else None
    return precision, accuracy, model.metadata_json("edgemnist.verified_on")


def verify(
    model_path: str | Path,
    *,
    provider: str = "auto",
    threads: int | None = None,
    data_dir: str | None = None,
    thresholds: Thresholds = Thresholds(),
    quiet: bool = False,
    allow_failed_gate: bool = False,
    public_key: Path | None = None,
    signature: Path | None = None,
) -> dict:
    """The verification report; `passed` is False with the failed checks named in `failures`. With
    `public_key`, a model whose signature does not verify is refused first (ModelError)."""
    start = time.perf_counter()
    path = Path(model_path)
    signed = signing.check(path, public_key, signature) if public_key else None
    model = runtime.open_model(path, provider, threads, quiet=quiet, allow_failed_gate=allow_failed_gate)  # usage errors before any download
    mnist = data.load(data_dir, quiet=quiet)
    pixels, labels = images_to_pixels(mnist.test_images), mnist.test_labels.astype(np.int64)
    logits = model.logits(pixels, batch_size=len(pixels))
    accuracy = float((logits.argmax(1) == labels).mean())
    precision, recorded_accuracy, recorded_on = recorded(model)
    ref = reference_semantics(path, logits, pixels, labels)

    failures = []
    drop = (recorded_accuracy - accuracy) * 100 if recorded_accuracy is not None else None
    if drop is not None and drop > thresholds.verify_max_drop_pp:
        failures.append(f"accuracy {accuracy:.2%} is {drop:.2f} pp below the {recorded_accuracy:.2%} recorded at export "
                        f"(limit {thresholds.verify_max_drop_pp} pp)")
    failures += reference_failures(ref, thresholds, prefix=precision or "model")
    quantization = model.metadata_json("edgemnist.quantization")
    return {
        "model": str(path),
        "sha256": model.sha256,
        "signature": signed,
        "passed": not failures,
        "failures": failures,
        "precision": precision,
        "cpu": cpu_info(),
        "providers": model.providers,
        "onnxruntime": ort.__version__,
        "n": int(len(labels)),
        "accuracy": accuracy,
        "recorded_accuracy": recorded_accuracy,
        "accuracy_drop_pp": drop,
        "recorded_on": recorded_on,
        "reference_accuracy": ref["accuracy"],
        "agreement_with_reference": ref["agreement"],
        "max_abs_dlogit_vs_reference": ref["max_abs_dlogit"],
        "saturation_free": quantization.get("saturation_free") if quantization else None,
        "thresholds": {k: v for k, v in asdict(thresholds).items() if k.startswith(("reference_", "verify_"))},
        "seconds": time.perf_counter() - start,
    }
