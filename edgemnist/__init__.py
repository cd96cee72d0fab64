"""edgemnist: train an MNIST MLP, export it to one ONNX file, quantize it, run it on onnxruntime.

    import edgemnist
    model = edgemnist.load()                 # the model `infer` would use; onnxruntime only
    result = model.classify("digit.png")     # a path, bytes, a PIL image or a numpy array (classify_batch: a list)
    print(result.label, result.confidence, result.sure)

Importing this package imports nothing else (no numpy, Pillow, onnxruntime, torch) and changes nothing.
"""

__version__ = "0.1.0"


class UserError(Exception):
    """An error the user can fix; the CLI prints it as one line and exits with `exit_code`.

    exit_code 2: usage or environment (bad option, missing file, provider not available).
    exit_code 1: the work ran but something failed (data unobtainable, a parity check).
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class ModelError(UserError):
    """The model cannot be used: missing, not ONNX, or not edgemnist's input/output contract (exit 2)."""


class ImageError(UserError):
    """This picture cannot be turned into a digit: not an image, damaged, too large, blank (exit 1)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message, exit_code)


class InputError(UserError):
    """An array or object `classify` cannot take: its shape, type or value range (exit 2)."""


def load(path=None, provider: str = "auto", threads: int | None = None):
    """Open a model for classifying pictures -> `edgemnist.api.Classifier`. `path` None: the model
    `edgemnist infer` would pick. Raises ModelError, or UserError for a provider not available."""
    from edgemnist.api import load as _load

    return _load(path, provider, threads)


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, or its type name when the message is empty."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
