"""fp32 ONNX -> int8 ONNX with onnxruntime's quantizer.  [train side]

Static (default): QDQ format, per-channel int8 weights, uint8 activations (the u8s8 kernels x86
VNNI runs fastest), calibrated on a seeded sample of *training* images, never test images.
Dynamic: int8 weights, activations quantized at run time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgemnist.runtime import INPUT_NAME, images_to_pixels
from edgemnist.settings import QuantSettings

CALIBRATORS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}


class _Batches(CalibrationDataReader):
    def __init__(self, pixels: np.ndarray, batch_size: int = 250):
        self._batches = iter([{INPUT_NAME: pixels[i : i + batch_size]} for i in range(0, len(pixels), batch_size)])

    def get_next(self):
        return next(self._batches, None)


def calibration_sample(train_images: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A seeded sample of training images as float32 [n, 1, 28, 28] in [0, 1]."""
    idx = np.random.default_rng(seed).choice(len(train_images), size=size, replace=False)
    return images_to_pixels(train_images[np.sort(idx)])


def quantize(fp32: onnx.ModelProto, settings: QuantSettings, train_images: np.ndarray | None) -> onnx.ModelProto:
    """Return the int8 model. The fp32 model goes through ORT's pre-processing (symbolic shape
    inference + graph optimisation) first, as ORT recommends, so every tensor the quantizer
    calibrates has an inferred shape whatever the exporter version emits."""
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, out = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        onnx.save_model(fp32, src)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
        if settings.method == "dynamic":
            quantize_dynamic(str(pre), str(out), per_channel=settings.per_channel, weight_type=QuantType.QInt8)
        else:
            if train_images is None:
                raise ValueError("static quantization needs training images for calibration")
            reader = _Batches(calibration_sample(train_images, settings.calibration_size, settings.seed))
            quantize_static(
                str(pre),
                str(out),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=settings.per_channel,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CALIBRATORS[settings.calibration_method],
                extra_options={"CalibTensorRangeSymmetric": False},
            )
        return onnx.load_model(out)
