"""The int8 reference model shipped with the package (a copy of exported/mlp.int8.onnx)."""
