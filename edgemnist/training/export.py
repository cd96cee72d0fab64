"""Checkpoint -> one self-contained ONNX file with edgemnist metadata.  [train side]

The trained MLP is folded first (input normalization and batch norm into the Linear layers), then
exported with the torch.export-based exporter with a symbolic batch axis `N`.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from edgemnist import UserError, __version__, atomic, contract, data, first_line, integrity, signing
from edgemnist.settings import NOT_SURE_BELOW, QuantSettings, Thresholds
from edgemnist.training import parity
from edgemnist.training import quantize as q
from edgemnist.training.model import MLP, fold
from edgemnist.training.temperature import fold_temperature
from edgemnist.training.train import load_checkpoint

MIN_OPSET = 18  # the torch.export-based exporter's floor


def base_metadata(model: MLP, source_sha256: str) -> dict[str, str]:
    c = model.config
    return {
        "edgemnist.producer": "edgemnist",
        "edgemnist.version": __version__,
        "edgemnist.format": "edgemnist-onnx/1",
        "edgemnist.input": json.dumps(contract.INPUT),
        "edgemnist.output": json.dumps(contract.OUTPUT),
        "edgemnist.labels": json.dumps(contract.LABELS),
        "edgemnist.normalization": json.dumps({"mean": c.mean, "std": c.std, "in_graph": True}),
        "edgemnist.architecture": json.dumps({"hidden": list(c.hidden), "macs_per_image": c.macs}),
        "edgemnist.source_sha256": source_sha256,
    }


def verified_on(report: dict) -> dict:
    """onnxruntime version, CPU and int8 kernel family of the parity run (what metadata records)."""
    cpu = report["cpu"]
    return {"onnxruntime": report["onnxruntime"], "cpu": cpu["model"], "arch": cpu["arch"],
            "int8_kernels": cpu["int8_kernels"], "provider": report["fp32"]["providers"][0]}


def measured_metadata(report: dict, settings: QuantSettings) -> dict[str, str]:
    """What the parity run measured, for the models' metadata: accuracies, where they were measured
    (int8 results depend on the CPU's kernels), the quantization settings and saturation check."""
    meta = {
        "edgemnist.accuracy.torch": f"{report['torch']['accuracy']:.6f}",
        "edgemnist.accuracy.fp32": f"{report['fp32']['accuracy']:.6f}",
        "edgemnist.verified_on": json.dumps(verified_on(report)),
    }
    if report["int8"] is not None:
        sat = report["int8"]["saturation"]
        meta["edgemnist.accuracy.int8"] = f"{report['int8']['accuracy']:.6f}"
        meta["edgemnist.accuracy.int8_reference"] = f"{report['int8']['reference']['accuracy']:.6f}"
        meta["edgemnist.quantization"] = json.dumps(
            json.loads(settings.metadata()) | {"saturation_free": sat["saturation_free"], "worst_pair_sum": sat["worst_pair_sum"]})
    return meta


def calibration_metadata(fitted: dict, row: dict) -> str:
    """edgemnist.calibration of one model: its temperature, where it was fitted, the model's own
    expected calibration error on the test set, and where the apps say "not sure"."""
    return json.dumps(fitted | {"ece_test": round(row["calibration"]["ece"], 6), "ece_bins": row["calibration"]["bins"],
                                "not_sure_below": NOT_SURE_BELOW})


def own_failures(report: dict, precision: str) -> list[str]:
    """The gate's failed checks that are this model's own (its row's `failures`, set by parity.run)."""
    return list((report.get(precision) or {}).get("failures", []))


def gate_metadata(report: dict, precision: str) -> str:
    """edgemnist.gate of one model: whether its own checks passed, and which failed (runtime.check_gate
    refuses to run a failed one)."""
    failures = own_failures(report, precision)
    return json.dumps({"passed": not failures, "failures": failures})


def set_metadata(proto: onnx.ModelProto, metadata: dict[str, str]) -> None:
    """Set edgemnist keys, replacing any earlier value (the quantizer copies its input's metadata)."""
    kept = [p for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=str(value))


def to_onnx(model: MLP, opset: int | None = None) -> onnx.ModelProto:
    """Export the folded model; the result passes onnx.checker with full shape inference."""
    if opset is not None and not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise UserError(
            f"--opset {opset}: the exporter writes opsets {MIN_OPSET}..{onnx.defs.onnx_opset_version()}"
        )
    folded = fold(model)
    example = torch.rand(2, 1, contract.IMAGE_SIZE, contract.IMAGE_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                folded,
                (example,),
                input_names=[contract.INPUT_NAME],
                output_names=[contract.OUTPUT_NAME],
                opset_version=opset,
                dynamo=True,
                external_data=False,
                dynamic_shapes={contract.INPUT_NAME: {0: torch.export.Dim("N")}},
                optimize=True,
                verbose=False,
            )
        except Exception as e:  # the exporter's own error types vary by version
            raise UserError(f"ONNX export failed (opset {opset}): {first_line(e)[:200]}") from None
    proto = program.model_proto
    # The exporter's per-value debug metadata is noise for a device; drop it.
    for value in [*proto.graph.input, *proto.graph.output]:
        del value.metadata_props[:]
    proto.producer_name, proto.producer_version = "edgemnist", __version__
    proto.graph.name = "edgemnist_mlp"
    onnx.checker.check_model(proto, full_check=True)
    return proto


def save(proto: onnx.ModelProto, path: Path) -> None:
    """Write one self-contained file (no external data), after checking it."""
    onnx.checker.check_model(proto, full_check=True)
    with_external = [t.name for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if with_external:
        raise RuntimeError(f"refusing to write external-data tensors {with_external}")
    blob = proto.SerializeToString()
    integrity.check(blob, {p.key: p.value for p in proto.metadata_props}, path)  # the recorded digest is of these bytes
    with atomic.atomic_path(path) as tmp:
        Path(tmp).write_bytes(blob)


def int8_path_for(out: Path) -> Path:
    return out.with_name(f"{out.stem}.int8.onnx")


def uint8_path_for(out: Path) -> Path:
    return out.with_name(f"{out.stem}.int8.uint8.onnx")


def _save_uint8_input(int8, out: Path, mnist, report: dict) -> None:
    """The uint8-input twin of the int8 model just written (`quantize.uint8_input`): its metadata but
    `edgemnist.input`, checked bit for bit against it on the 10,000 test images (uint8 in, the same
    images / 255 into the int8 model) before it is written; it carries the int8 model's gate verdict,
    failed as well when a logit differs. The report gets `int8_uint8` (path, size, max |Δlogit|)."""
    import onnxruntime as ort

    try:
        twin = q.uint8_input(int8)
    except ValueError as e:
        raise UserError(f"--input uint8: the int8 model cannot take uint8 pixels: {e}") from None
    sessions = [ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]) for proto in (int8, twin)]
    images = mnist.test_images[:, None]
    reference = sessions[0].run(None, {contract.INPUT_NAME: contract.images_to_pixels(mnist.test_images)})[0]
    dlogit = float(np.abs(sessions[1].run(None, {contract.INPUT_NAME: images})[0] - reference).max())
    own = [f"int8_uint8 twin differs from the int8 model (max |Δlogit| {dlogit:.3g})"] if dlogit else []
    report["failures"] += own
    report["passed"] = report["passed"] and not own
    failures = own_failures(report, "int8") + own  # the int8 model's verdict is the twin's too
    set_metadata(twin, {"edgemnist.input": json.dumps(contract.UINT8_INPUT),
                        "edgemnist.gate": json.dumps({"passed": not failures, "failures": failures})})
    path = uint8_path_for(out)
    save(twin, path)
    report["int8_uint8"] = {"path": str(path), "size_bytes": path.stat().st_size, "max_abs_dlogit_vs_int8": dlogit,
                            "failures": failures, "passed": not failures}


def _gate(model, mnist, fp32, int8, where: Path, settings: QuantSettings, thresholds: Thresholds, on_stage) -> dict:
    """The parity gate on the models as they will be written (saved to a temporary folder beside the
    destination, then read back by onnxruntime)."""
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        fp32_tmp, int8_tmp = Path(tmp, "fp32.onnx"), Path(tmp, "int8.onnx")
        onnx.save_model(fp32, fp32_tmp)
        if int8 is not None:
            onnx.save_model(int8, int8_tmp)
        on_stage("parity")
        return parity.run(
            model, mnist.test_images, mnist.test_labels, fp32_tmp, int8_tmp if int8 else None, thresholds,
            int8_dynamic=settings.method == "dynamic",
        )


def _save_both(fp32, int8, out: Path, meta: dict, fitted: dict, report: dict) -> None:
    """Each model with its metadata (the measured figures and its gate verdict included), written
    atomically; the report gets their paths and sizes."""
    for precision, proto, path in (("fp32", fp32, out), ("int8", int8, int8_path_for(out))):
        if proto is None:
            continue
        shared = meta if precision == "int8" else {k: v for k, v in meta.items() if k != "edgemnist.quantization"}
        set_metadata(proto, shared | {integrity.KEY: integrity.graph_sha256(proto.SerializeToString()),
                                      "edgemnist.precision": precision,
                                      "edgemnist.calibration": calibration_metadata(fitted, report[precision]),
                                      "edgemnist.gate": gate_metadata(report, precision)})
        save(proto, path)
        report[precision] |= {"path": str(path), "size_bytes": path.stat().st_size}
    if int8 is not None:
        report["int8"]["size_ratio"] = report["int8"]["size_bytes"] / report["fp32"]["size_bytes"]


def _signatures(report: dict, signer) -> list[str]:
    """Sign each written model that passed its gate (`signature` in its report row); remove the older
    signatures of rewritten models that are not signed now. Returns the removed paths."""
    removed = []
    for precision in ("fp32", "int8", "int8_uint8"):
        if not report.get(precision):
            continue
        path = Path(report[precision]["path"])
        older = signing.signature_path(path)
        if signer is not None and str(path) not in report["failing"]:
            report[precision]["signature"] = str(signing.sign(path, signer))
        elif older.is_file():
            older.unlink()
            removed.append(str(older))
    return removed


STAGES = ("temperature", "export", "quantize", "parity")  # what `on_stage` reports, in this order


def stages(quantize: bool = True, temperature: bool = True) -> list[str]:
    """The stages an export with these options goes through (its progress bar's steps)."""
    return [s for s in STAGES if (s != "temperature" or temperature) and (s != "quantize" or quantize)]


def _check_request(out: Path, quantize: bool, settings: QuantSettings, uint8_input: bool) -> None:
    """Usage errors, before any work: one line, exit 2."""
    if out.suffix != ".onnx":
        raise UserError(f"--out must end in .onnx, got {out}")
    if uint8_input and not (quantize and settings.method == "static"):
        raise UserError("--input uint8 makes a twin of the static int8 model: drop --no-quantize and --method dynamic")
    atomic.ensure_writable_dir(out)


def _remove_stale(out: Path, quantized: bool, uint8_input: bool) -> list[str]:
    """Older models beside the new ones that this export did not write (infer would pick a stale int8
    one), and their signatures: removed, their paths returned."""
    stale = [int8_path_for(out)] * (not quantized) + [uint8_path_for(out)] * (not uint8_input)
    removed = []
    for path in stale:
        for old in (path, signing.signature_path(path)):
            if old.is_file():
                old.unlink()
                removed.append(str(old))
    return removed


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    *,
    quantize: bool = True,
    temperature: bool = True,
    settings: QuantSettings = QuantSettings(),
    opset: int | None = None,
    thresholds: Thresholds = Thresholds(),
    data_dir: str | None = None,
    sign_key: Path | None = None,
    uint8_input: bool = False,
    on_stage=lambda stage: None,
) -> dict:
    """Checkpoint -> `out` (fp32) [+ `<stem>.int8.onnx`], then the parity gate on the full test set.
    With `temperature`, the logits are first divided by a temperature fitted on the checkpoint's
    held-out training images (folded into the model: PyTorch and ONNX stay the same function).

    Returns the parity report (with `passed` and `failures`); files are written even when the gate
    fails, so they can be inspected, and the report names them. Without `quantize`, an older
    `<stem>.int8.onnx` beside `out` is removed (`removed` in the report): `infer` would prefer it to
    the model just made. With `sign_key`, each model that passed its gate gets `<file>.sig`
    (signing.py); without it, an older `.sig` beside a rewritten model is removed (it would no longer
    verify). With `uint8_input`, also `<stem>.int8.uint8.onnx`, the int8 model taking uint8 pixels
    (`_save_uint8_input`); without it, an older one beside `out` is removed as well. `on_stage(name)`
    reports progress.
    """
    start = time.perf_counter()
    checkpoint, out = Path(checkpoint), Path(out)
    _check_request(out, quantize, settings, uint8_input)
    signer = signing.signer(sign_key) if sign_key else None  # a bad key fails before the work
    model, ckpt = load_checkpoint(checkpoint)
    source_sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    mnist = data.load(data_dir)
    fitted = {"temperature": 1.0, "fitted_on": None}
    if temperature:
        on_stage("temperature")
        model, fitted = fold_temperature(model, ckpt.get("train_config", {}), mnist.train_images, mnist.train_labels)

    meta = base_metadata(model, source_sha)
    on_stage("export")
    fp32 = to_onnx(model, opset)
    int8 = None
    if quantize:
        on_stage("quantize")
        int8 = q.quantize(fp32, settings, mnist.train_images)

    report = _gate(model, mnist, fp32, int8, out.parent, settings, thresholds, on_stage)
    report["calibration"] = fitted
    _save_both(fp32, int8, out, meta | measured_metadata(report, settings), fitted, report)
    if uint8_input:
        _save_uint8_input(int8, out, mnist, report)
    report["failing"] = [report[p]["path"] for p in ("fp32", "int8", "int8_uint8") if own_failures(report, p)]
    report["removed"] = _signatures(report, signer) + _remove_stale(out, int8 is not None, uint8_input)
    report["checkpoint"] = str(checkpoint)
    report["seconds"] = time.perf_counter() - start
    return report
