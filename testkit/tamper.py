"""Seeded damage to a model's weights, for the integrity tests: where the weights lie in an ONNX file
(found by edgemnist.integrity's protobuf walker) and bit flips among them."""

from __future__ import annotations

import numpy as np

from edgemnist import integrity

INITIALIZER = 5  # GraphProto.initializer
DATA = {4, 5, 7, 9, 10, 11}  # TensorProto float_data, int32_data, int64_data, raw_data, double_data, uint64_data


def weight_spans(blob: bytes) -> list[tuple[int, int]]:
    """[start, end) of every initializer's values in the file (scales and zero points included)."""
    graph = [(b, e) for n, w, b, e in integrity.fields(blob) if n == integrity.GRAPH_FIELD and w == 2]
    (g0, g1), spans = graph[0], []
    for n, w, b, e in integrity.fields(blob, g0, g1):
        if n == INITIALIZER and w == 2:
            spans += [(rb, re) for rn, rw, rb, re in integrity.fields(blob, b, e) if rn in DATA and rw == 2 and re > rb]
    return spans


def weight_bit_flips(blob: bytes, n: int, seed: int = 0) -> list[tuple[int, int]]:
    """n distinct (byte offset, bit) pairs inside the weights, drawn in proportion to each tensor's size."""
    spans = weight_spans(blob)
    offsets = np.concatenate([np.arange(b, e) for b, e in spans])
    rng = np.random.default_rng(seed)
    return [(int(o), int(rng.integers(8))) for o in rng.choice(offsets, size=n, replace=False)]


def flipped(blob: bytes, offset: int, bit: int) -> bytes:
    out = bytearray(blob)
    out[offset] ^= 1 << bit
    return bytes(out)
