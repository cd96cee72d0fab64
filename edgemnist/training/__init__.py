"""The training side: torch, torchvision, onnx, onnxscript (`pip install 'edgemnist[train]'`).

model (MLP + folding), train (loop, checkpoint), export (checkpoint -> ONNX + metadata), quantize
(int8 + the saturation check), parity (the gate). Everything outside this package is the runtime
side and never imports it, or torch/onnx, at import time (tests/test_boundary.py checks).
"""
