"""Every default and every choice list, defined once: the settings of each stage as plain
dataclasses, the model's architecture (MLPConfig, which travels in the checkpoint), default paths.

Dependency-free (no numpy, no torch, no onnxruntime) so the CLI can take its option defaults from here
without importing either side, and the two can never drift apart.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from edgemnist import UserError

PROVIDERS = ("auto", "cpu", "cuda")  # onnxruntime execution provider, or torch device for `train`
QUANT_METHODS = ("static", "dynamic")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
WEIGHT_BITS = (7, 8)
INPUT_DTYPES = ("float32", "uint8")  # export --input: uint8 also writes the int8 model's uint8-input twin

# Where the commands read and write by default (relative to the working directory)
DEFAULT_CHECKPOINT = Path("exported/mlp.pt")
DEFAULT_ONNX = Path("exported/mlp.onnx")
DEFAULT_INT8 = Path("exported/mlp.int8.onnx")  # <stem>.int8.onnx of DEFAULT_ONNX

# The ONNX contract's image size and classes (edgemnist.contract has the rest; it needs numpy)
IMAGE_SIZE, NUM_CLASSES = 28, 10
MEAN, STD = 0.1307, 0.3081  # pixel statistics of the MNIST training set, in [0, 1] units

# The browser target: onnxruntime-web from the npm registry, pinned to a version and its tarball's
# integrity (dist.integrity); only its WebAssembly-only entry goes into a site
ORT_WEB_VERSION = "1.30.0"
ORT_WEB_INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
ORT_WEB_FILES = ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm")
WEB_HOST, WEB_PORT = "127.0.0.1", 8000

# Calibration: expected calibration error over this many equal-width confidence bins, and the
# confidence below which `infer` and the web page say "not sure" (the model's metadata may override it).
# The probabilities are calibrated, so an answer at 60-95% is wrong a fifth to a third of the time (the
# tuning slices): with 0.6 as the bar, 1.35% of tight crops and 1.95% of crops of every kind were
# answered sure and wrong, and a 1 pressed into its neighbour was read as one sure digit. 0.95 is the
# lowest bar that leaves at most 1% of every tuning set sure and wrong (docs/benchmarks.md, Numbers).
ECE_BINS = 15
NOT_SURE_BELOW = 0.95


MAX_PARAMETERS = 100_000_000  # 400 MB of fp32 weights; protobuf caps one ONNX file at 2 GB


@dataclass(frozen=True)
class MLPConfig:
    hidden: tuple[int, ...] = (512, 256, 128, 64)
    input_size: int = IMAGE_SIZE * IMAGE_SIZE
    num_classes: int = NUM_CLASSES
    batchnorm: bool = True  # folded into the linear layers on export: the ONNX graph stays plain Gemm+Relu
    dropout: float = 0.0
    mean: float = MEAN
    std: float = STD

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise UserError(f"hidden layer sizes must be positive integers, got {list(self.hidden)}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.parameters > MAX_PARAMETERS:
            raise UserError(f"hidden layers {list(self.hidden)} make {self.parameters:,} parameters: at most {MAX_PARAMETERS:,} "
                            "(one self-contained ONNX file holds under 2 GB)")

    @property
    def parameters(self) -> int:
        """Weights and biases of the linear layers."""
        sizes = (self.input_size, *self.hidden, self.num_classes)
        return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MLPConfig":
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if not (k == "extra" and not v)}  # an unused field that older checkpoints carry
        unknown = set(d) - known
        if unknown:
            raise UserError(f"checkpoint config has unknown fields {sorted(unknown)}")
        return cls(**d)

    @property
    def shapes(self) -> tuple[int, ...]:
        """Layer widths from input to output."""
        return (self.input_size, *self.hidden, self.num_classes)

    @property
    def macs(self) -> int:
        """Multiply-adds per image."""
        return macs(self.shapes)


def macs(shapes: tuple[int, ...]) -> int:
    """Multiply-adds per image of a chain of fully connected layers of these widths."""
    return sum(a * b for a, b in zip(shapes, shapes[1:]))


def parse_hidden(text: str) -> tuple[int, ...]:
    """'512,256,128,64' -> (512, 256, 128, 64); a clear UserError otherwise."""
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"--hidden wants comma-separated positive integers, got {text!r}") from None
    if not sizes or any(s <= 0 for s in sizes):
        raise UserError(f"--hidden wants comma-separated positive integers, got {text!r}")
    return sizes


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 18
    batch_size: int = 256
    lr: float = 0.2  # peak of the one-cycle schedule
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    rotate_deg: float = 10.0
    translate_px: float = 2.0
    scale: float = 0.1
    seed: int = 0
    holdout: int = 2000  # training images kept out of training (seeded), for fitting the temperature
    variants: int = 8000  # pen-stroke digits in forms MNIST rarely has (training/variants.py); 6000 let the pairs pull a curled 6 to 5
    fragments: int = 9000  # touching pairs taught as no digit (training/fragments.py), so the number reader does not take two touching digits for one; docs/benchmarks.md, Numbers

    def __post_init__(self):
        if not 0 <= self.holdout <= 30000:
            raise UserError(f"--holdout must be in 0..30000, got {self.holdout}")
        if not 0 <= self.variants <= 100000:
            raise UserError(f"--variants must be in 0..100000, got {self.variants}")
        if not 0 <= self.fragments <= 100000:
            raise UserError(f"--fragments must be in 0..100000, got {self.fragments}")
        if self.epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise UserError(f"--lr must be positive, got {self.lr}")
        if not 0 <= self.seed < 2**32:  # numpy's generators refuse negative seeds, torch's those past 64 bits
            raise UserError(f"--seed must be in 0..{2**32 - 1}, got {self.seed}")


@dataclass(frozen=True)
class QuantSettings:
    method: str = "static"  # static | dynamic
    calibration_size: int = 1000
    calibration_method: str = "minmax"
    per_channel: bool = False  # one weight scale per tensor: the faster batch-1 kernels, same accuracy
    # 7: weights in [-64, 64], so a u8 x s8 pair sum (255 * 128 = 32,640) never saturates int16 on
    # AVX2/AVX-512BW: the same answers on every CPU. 8: full range, exact only on VNNI/AMX/ARM64.
    weight_bits: int = 7
    seed: int = 0

    def __post_init__(self):
        if self.weight_bits not in WEIGHT_BITS:
            raise UserError(f"--weight-bits must be 7 (portable) or 8 (VNNI/AMX/ARM64 only), got {self.weight_bits}")
        if self.method not in QUANT_METHODS:
            raise UserError(f"--method must be one of {', '.join(QUANT_METHODS)}, got {self.method!r}")
        if self.calibration_method not in CALIBRATION_METHODS:
            raise UserError(f"--calibration-method must be one of {', '.join(CALIBRATION_METHODS)}")
        if self.method == "static" and not 1 <= self.calibration_size <= 60000:
            raise UserError(f"--calibration-size must be in 1..60000, got {self.calibration_size}")

    def metadata(self) -> str:
        d = asdict(self)
        if self.method == "dynamic":
            d = {k: v for k, v in d.items() if k in ("method", "per_channel", "weight_bits")} | {"weights": "int8", "activations": "uint8"}
        else:
            d |= {"calibration_data": "train", "format": "QDQ", "weights": "int8", "activations": "uint8", "logits": "float32"}
        return json.dumps(d)


def _limit(default: float, flag: str | None, high: float = math.inf):
    """A threshold: its default, the option that sets it, and its range [0, high] (NaN is refused)."""
    return field(default=default, metadata={"flag": flag, "high": high})


@dataclass(frozen=True)
class Thresholds:
    fp32_min_agreement: float = _limit(1.0, None, 1.0)  # top-1 agreement with PyTorch
    fp32_max_abs_dlogit: float = _limit(1e-4, "--max-dlogit")
    int8_max_drop_pp: float = _limit(0.3, "--max-int8-drop", 100.0)  # accuracy drop vs PyTorch, percentage points
    int8_min_agreement: float = _limit(0.995, "--min-int8-agreement", 1.0)
    batch_max_diff: float = _limit(1e-5, None)  # batch-1 vs whole-set outputs of the same model
    # int8: this CPU's fused kernels vs the reference semantics (graph optimizations off)
    reference_min_agreement: float = _limit(0.999, "--min-reference-agreement", 1.0)
    reference_max_abs_dlogit: float = _limit(0.1, "--max-reference-dlogit")
    # verify: accuracy on the target vs the accuracy recorded in the model at export
    verify_max_drop_pp: float = _limit(0.1, "--max-drop", 100.0)

    def __post_init__(self):
        for f in fields(self):  # a NaN or out-of-range gate would pass or fail everything, silently
            value, high = getattr(self, f.name), f.metadata["high"]
            if not (isinstance(value, (int, float)) and 0 <= value <= high):
                raise UserError(f"{f.metadata['flag'] or f.name} must be a number from 0 to {high:g}, got {value}")
