"""What a model's weights were at export: a digest of its graph, recorded in its metadata and checked
on every load.  [runtime side: standard library only]

An ONNX file is a protobuf ModelProto. Its field 7 is the graph: the initializers (the weights) and
the nodes that compute with them. The metadata (field 14) lies outside the graph, so the digest of the
graph's bytes can travel in the metadata of the model it describes, and adding or editing other
metadata keys leaves it valid. The core install has no `onnx` package: a minimal protobuf walker finds
the field.

A digest proves the file is the one `export` wrote, not who wrote it: anyone can recompute it after
changing the weights. Signatures (`export --sign-key`, `verify --public-key`) prove who.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgemnist import ModelError

KEY = "edgemnist.graph_sha256"
GRAPH_FIELD = 7
_FIXED = {1: 8, 5: 4}  # wire type -> bytes (64-bit, 32-bit)


def _varint(blob: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if i >= len(blob) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = blob[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return value, i


def fields(blob: bytes | memoryview, start: int = 0, end: int | None = None):
    """The fields of one serialized protobuf message: (number, wire type, value start, value end);
    ValueError when the bytes are not well-formed."""
    end = len(blob) if end is None else end
    i = start
    while i < end:
        key, i = _varint(blob, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            begin, (_, i) = i, _varint(blob, i)
        elif wire == 2:
            size, begin = _varint(blob, i)
            i = begin + size
        elif wire in _FIXED:
            begin, i = i, i + _FIXED[wire]
        else:
            raise ValueError(f"field {number} has wire type {wire}, not used by ONNX")
        if i > end:
            raise ValueError(f"field {number} runs past the end of its message")
        yield number, wire, begin, i


def graph_bytes(blob: bytes) -> memoryview:
    """The serialized graph inside a serialized ModelProto; ValueError unless the bytes are one
    well-formed message with exactly one graph."""
    found = [(b, e) for number, wire, b, e in fields(blob) if number == GRAPH_FIELD and wire == 2]
    if len(found) != 1:
        raise ValueError(f"expected one graph, found {len(found)}")
    return memoryview(blob)[found[0][0] : found[0][1]]


def graph_sha256(blob: bytes) -> str:
    return hashlib.sha256(graph_bytes(blob)).hexdigest()


def check(blob: bytes, metadata: dict[str, str], path: Path) -> None:
    """ModelError (exit 2) when the graph's digest differs from the one recorded at export. Models
    without a recorded digest (older exports, other tools) pass."""
    recorded = metadata.get(KEY)
    if recorded is None:
        return
    try:
        actual = graph_sha256(blob)
    except ValueError as e:
        raise ModelError(f"{path} is not a well-formed ONNX file ({e})") from None
    if actual != recorded.strip().lower():
        raise ModelError(f"{path}: its weights are not those recorded at export (graph sha256 {actual[:12]}, "
                         f"recorded {recorded[:12]}): the file was altered or damaged; export or copy it again")
