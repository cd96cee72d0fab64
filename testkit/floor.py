"""An ONNX model that does no work (Flatten, then the first ten values): the runtime's fixed cost of
one call, the floor under every model's batch-1 latency. Shared by the benchmarks."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def empty_model() -> onnx.ModelProto:
    """pixels float32 [N, 1, 28, 28] -> "logits" [N, 10], the edgemnist contract, no arithmetic."""
    consts = [numpy_helper.from_array(np.array([v], np.int64), n) for n, v in (("s", 0), ("e", 10), ("a", 1))]
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["pixels"], ["f"]), helper.make_node("Slice", ["f", "s", "e", "a"], ["logits"])],
        "empty", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], consts)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
