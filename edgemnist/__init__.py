"""edgemnist: train an MNIST MLP, export it to one ONNX file, quantize it, run it on onnxruntime."""

__version__ = "0.1.0"


class UserError(Exception):
    """An error the user can fix; the CLI prints it as one line and exits with `exit_code`.

    exit_code 2: usage or environment (bad option, missing file, provider not available).
    exit_code 1: the work ran but something failed (data unobtainable, a parity check).
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, or its type name when the message is empty."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
