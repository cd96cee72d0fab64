"""The ONNX contract every edgemnist model keeps, and the one pixel conversion.  [both sides; numpy only]

Input `pixels`: float32 [N, 1, 28, 28], values in [0, 1], light digit on dark background (the
normalization is inside the graph). Output `logits`: float32 [N, 10], one per digit 0-9.
The uint8-input int8 model (`export --input uint8`, <stem>.int8.uint8.onnx) takes `pixels` as uint8
[N, 1, 28, 28], 0-255: the int8 model's own quantized input (scale 1/255, zero point 0), the same logits.
"""

from __future__ import annotations

import numpy as np

from edgemnist.settings import IMAGE_SIZE, NUM_CLASSES

INPUT_NAME, OUTPUT_NAME = "pixels", "logits"
POLARITY = "light-on-dark"
POLARITIES = (POLARITY, "dark-on-light")  # what a model's edgemnist.input may ask for
LABELS = [str(d) for d in range(NUM_CLASSES)]
INPUT = {
    "name": INPUT_NAME,
    "layout": "NCHW",
    "shape": ["N", 1, IMAGE_SIZE, IMAGE_SIZE],
    "dtype": "float32",
    "range": [0.0, 1.0],
    "polarity": POLARITY,
}
UINT8_INPUT = INPUT | {"dtype": "uint8", "range": [0, 255]}
OUTPUT = {"name": OUTPUT_NAME, "shape": ["N", NUM_CLASSES], "kind": "logits"}


def images_to_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 [N, 28, 28] -> float32 [N, 1, 28, 28] in [0, 1]."""
    return (images.astype(np.float32) / 255.0)[:, None]


def pixels_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 0-255 as the int8 model's input QuantizeLinear (scale 1/255, zero point 0)
    does it: divided by the float32 scale, rounded half to even, saturated."""
    return np.clip(np.rint(np.asarray(pixels, np.float32) / np.float32(1 / 255)), 0, 255).astype(np.uint8)
