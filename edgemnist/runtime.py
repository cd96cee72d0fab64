"""onnxruntime sessions, execution-provider policy, metadata and batched logits.  [runtime side]

Never imports torch: onnxruntime + numpy only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgemnist import ModelError, UserError, contract, first_line, integrity
from edgemnist.progress import say
from edgemnist.settings import DEFAULT_INT8, DEFAULT_ONNX, NOT_SURE_BELOW, PROVIDERS

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


def resolve_providers(requested: str, available: list[str]) -> list[str]:
    """The provider list to ask onnxruntime for. Pure: testable without a GPU."""
    if requested not in PROVIDERS:
        raise UserError(f"--provider must be one of {', '.join(PROVIDERS)}, got {requested!r}")
    if requested == "cpu":
        return [CPU]
    if CUDA in available:
        return [CUDA, CPU]
    if requested == "cuda":
        raise UserError(
            "--provider cuda: onnxruntime has no CUDAExecutionProvider here "
            f"(available: {', '.join(available)}); install onnxruntime-gpu in place of onnxruntime"
        )
    return [CPU]


def check_granted(requested: str, asked: list[str], granted: list[str], *, quiet: bool = False) -> None:
    """onnxruntime only warns when CUDA fails to initialise and silently runs on CPU: refuse that
    for `cuda`, and say which provider `auto` ended up with."""
    if CUDA in asked and CUDA not in granted:
        if requested == "cuda":
            raise UserError("--provider cuda: the session fell back to CPU (no usable CUDA device or libraries)")
    if requested == "auto" and not quiet:
        say(f"provider: {granted[0]} (auto)")


def default_threads() -> int:
    """Physical-ish core count, capped: these models are tiny, more threads only add sync cost."""
    return max(1, min(4, usable_cores()))


MAX_THREADS = 256  # onnxruntime starts every thread it is asked for: --threads 100000 hung for minutes


def check_threads(threads: int | None) -> None:
    """--threads: None (the default) or 1..MAX_THREADS; UserError (one line, exit 2) otherwise."""
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise UserError(f"--threads must be from 1 to {MAX_THREADS}, got {threads}")


def usable_cores() -> int:
    """The cores this process may use (its CPU affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_model_path() -> Path:
    """exported/mlp.int8.onnx, else exported/mlp.onnx (working directory), else the packaged int8 model."""
    for candidate in (DEFAULT_INT8, DEFAULT_ONNX):
        if candidate.is_file():
            return candidate
    return Path(str(resources.files("edgemnist.pretrained") / "mlp.int8.onnx"))


@dataclass
class Model:
    """An ONNX model opened for inference, with its metadata and the providers it really got."""

    path: Path
    session: ort.InferenceSession
    metadata: dict[str, str]
    sha256: str = ""  # of the file's bytes, as opened

    @property
    def precision(self) -> str:
        return self.metadata.get("edgemnist.precision", "unknown precision")

    def describe(self) -> str:
        """One line for people: path (precision, the first 12 hex digits of its SHA-256)."""
        return f"{self.path} ({self.precision}, sha256 {self.sha256[:12]})"

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    @functools.cached_property
    def input_name(self) -> str:
        return self.session.get_inputs()[0].name

    @functools.cached_property
    def fixed_batch(self) -> int | None:
        """1 for a model exported with a fixed batch of one (check_contract refuses other fixed sizes)."""
        first = self.session.get_inputs()[0].shape[0]
        return first if isinstance(first, int) else None

    @functools.cached_property
    def takes_uint8(self) -> bool:
        """A uint8-input int8 model (`export --input uint8`): pixels 0-255."""
        return self.session.get_inputs()[0].type == "tensor(uint8)"

    def logits(self, pixels: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """pixels float32 [N, 1, 28, 28] in [0, 1] -> logits float32 [N, 10]. A uint8-input model
        gets them as its own input quantization would make them (contract.pixels_to_uint8), or
        as they are when they already are uint8 (0-255)."""
        name, batch_size = self.input_name, self.fixed_batch or batch_size
        if self.takes_uint8:
            pixels = pixels if pixels.dtype == np.uint8 else contract.pixels_to_uint8(pixels)
        dtype = np.uint8 if self.takes_uint8 else np.float32
        out = [
            self.session.run(None, {name: np.ascontiguousarray(pixels[i : i + batch_size], dtype=dtype)})[0]
            for i in range(0, len(pixels), batch_size)
        ]
        if len(out) == 1:  # one call's output as it is: no copy (the API's single pictures)
            return out[0]
        return np.concatenate(out) if out else np.zeros((0, contract.NUM_CLASSES), np.float32)

    def metadata_json(self, key: str, default=None):
        """A JSON metadata value, of `default`'s JSON type (an object when `default` is None), or
        `default` when the key is absent; ModelError (one line, exit 2) when it is damaged."""
        value = self.metadata.get(key)
        if value is None:
            return default
        kind = dict if default is None else type(default)
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if not isinstance(parsed, kind):
            raise ModelError(f"{self.path}: its metadata {key} is damaged (expected a JSON {kind.__name__}): export it again")
        return parsed

    def metadata_number(self, key: str, value, low: float = 0.0, high: float = 1.0) -> float | None:
        """A number from metadata (`value` as found under `key`), checked to lie in [low, high]."""
        if value is None:
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not low <= number <= high:
            raise ModelError(f"{self.path}: its metadata {key} is damaged ({str(value)[:40]!r} is not a number in [{low:g}, {high:g}])")
        return number

    def recorded_accuracy(self, precision: str) -> float | None:
        """The test accuracy `export` recorded for `precision` (edgemnist.accuracy.<precision>), or None."""
        key = f"edgemnist.accuracy.{precision}"
        return self.metadata_number(key, self.metadata.get(key))

    @functools.cached_property
    def not_sure_below(self) -> float:
        """The confidence below which an answer is "not sure": the model's calibration metadata, else NOT_SURE_BELOW."""
        value = self.metadata_json("edgemnist.calibration", {}).get("not_sure_below", NOT_SURE_BELOW)
        return self.metadata_number("edgemnist.calibration", value)

    @functools.cached_property
    def polarity(self) -> str:
        """The input polarity the model's metadata asks for, else the contract's (light on dark)."""
        polarity = self.metadata_json("edgemnist.input", {}).get("polarity", contract.POLARITY)
        if polarity not in contract.POLARITIES:
            raise ModelError(f"{self.path}: its metadata edgemnist.input is damaged (polarity {str(polarity)[:40]!r})")
        return polarity


def session_options(threads: int | None, *, reference: bool = False) -> ort.SessionOptions:
    """reference=True disables graph optimizations: an int8 QDQ model then runs as its reference
    semantics (QuantizeLinear/DequantizeLinear around float ops), the same on every CPU, instead of
    the fused integer kernels this CPU picks."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL if reference else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: ORT's warnings go to stderr otherwise
    return opts


def open_model(
    path: str | os.PathLike, provider: str = "auto", threads: int | None = None, *, quiet: bool = False, reference: bool = False,
    allow_failed_gate: bool = False, blob: bytes | None = None,
) -> Model:
    """Open an ONNX model for inference; ModelError (exit 2) for anything that is not a usable model,
    for a model whose weights are not those recorded at export (`integrity.check`), and for a model
    export marked as failing its parity gate (unless `allow_failed_gate`).
    `reference=True`: graph optimizations off (see `session_options`). `blob`: the model's bytes, read
    elsewhere (a Ray worker on a machine without the file); `path` then only names it."""
    path = Path(path)
    if blob is None and not path.is_file():
        raise ModelError(f"model {path} not found")
    check_threads(threads)
    asked = resolve_providers(provider, ort.get_available_providers())
    try:
        if blob is None:
            blob = path.read_bytes()  # hashed and loaded from the same bytes: the model named is the model run
        session = ort.InferenceSession(blob, sess_options=session_options(threads, reference=reference), providers=asked)
    except Exception as e:  # ORT raises InvalidProtobuf, Fail, InvalidGraph… for non-ONNX files
        raise ModelError(f"{path} is not a usable ONNX model ({first_line(e)[:160]})") from None
    check_contract(session, path)
    try:
        metadata = dict(session.get_modelmeta().custom_metadata_map)
    except UnicodeDecodeError:  # onnxruntime decodes the metadata strings as UTF-8 on access
        raise ModelError(f"{path}: its metadata is not valid UTF-8 text (damaged or not an edgemnist export)") from None
    integrity.check(blob, metadata, path)
    if not allow_failed_gate:
        check_gate(metadata, path)
    check_granted(provider, asked, session.get_providers(), quiet=quiet)
    model = Model(path=path, session=session, metadata=metadata, sha256=hashlib.sha256(blob).hexdigest())
    if not quiet:
        say(f"model: {model.describe()}")
    return model


def check_gate(metadata: dict[str, str], path: Path) -> None:
    """`export` marks each model with its parity gate's verdict (edgemnist.gate); a failed one is
    kept for inspection, never run by mistake. Models without the mark (older exports, other tools)
    pass."""
    try:
        gate = json.loads(metadata.get("edgemnist.gate", "{}"))
    except ValueError:
        gate = {"passed": False, "failures": ["its edgemnist.gate metadata is not JSON"]}
    if isinstance(gate, dict) and gate.get("passed", True) is not True:
        failures = gate.get("failures") or ["no reason recorded"]
        raise ModelError(f"{path} failed its parity gate at export ({'; '.join(map(str, failures))[:200]}): "
                         "re-export it, or pass --allow-failed-gate to run it anyway")


def check_contract(session: ort.InferenceSession, path: Path) -> None:
    """The edgemnist input contract: one float32 (or, the uint8-input int8 model, uint8) input [N, 1, 28, 28], one output [N, 10]."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ModelError(f"{path}: expected one input and one output, got {len(inputs)} and {len(outputs)}")
    inp, out = inputs[0], outputs[0]
    if inp.type not in ("tensor(float)", "tensor(uint8)") or len(inp.shape) != 4 or list(inp.shape[1:]) != contract.INPUT["shape"][1:]:
        raise ModelError(f"{path}: input {inp.name} is {inp.type} {inp.shape}, expected float32 [N, 1, 28, 28]")
    if isinstance(inp.shape[0], int) and inp.shape[0] != 1:
        raise ModelError(f"{path}: input {inp.name} has a fixed batch of {inp.shape[0]}: export it with a dynamic batch (or 1)")
    if len(out.shape) != 2 or out.shape[1] != contract.NUM_CLASSES:
        raise ModelError(f"{path}: output {out.name} has shape {out.shape}, expected [N, 10]")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
