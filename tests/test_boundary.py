"""The torch-free boundary, checked statically (fast, no import): runtime-side modules, everything in
edgemnist/ outside edgemnist/training/, import neither torch, torchvision, onnx, onnxscript nor the
training side at import time. Inside a function (a command that needs it) is allowed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edgemnist"
FORBIDDEN = ("torch", "torchvision", "onnx", "onnxscript", "edgemnist.training")
RUNTIME_SIDE = sorted(p for p in PACKAGE.rglob("*.py") if "training" not in p.relative_to(PACKAGE).parts)


def import_time_imports(source: str) -> list[str]:
    """Modules imported when the module is imported: top-level statements, including those inside
    module-level if/try/with blocks, but not inside functions or classes."""
    found: list[str] = []

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                found.extend([base] + [f"{base}.{alias.name}" for alias in node.names])
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                visit(ast.iter_child_nodes(node))

    visit(ast.parse(source).body)
    return found


def forbidden(names: list[str]) -> list[str]:
    return [n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]


@pytest.mark.parametrize("path", RUNTIME_SIDE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_runtime_side_module_imports_nothing_of_the_training_side(path):
    assert forbidden(import_time_imports(path.read_text())) == []


def test_the_check_sees_what_it_must():
    assert forbidden(import_time_imports("import torch\nfrom edgemnist.training import train\n")) == ["torch", "edgemnist.training", "edgemnist.training.train"]
    assert forbidden(import_time_imports("from edgemnist import training\n")) == ["edgemnist.training"]
    assert forbidden(import_time_imports("try:\n    import onnx\nexcept ImportError:\n    pass\n")) == ["onnx"]
    assert forbidden(import_time_imports("def f():\n    import torch\n")) == []
    assert forbidden(import_time_imports("import onnxruntime\nimport torchx\n")) == []


def test_the_contract_module_needs_only_numpy():
    names = import_time_imports((PACKAGE / "contract.py").read_text())
    assert {n.split(".")[0] for n in names} <= {"__future__", "numpy", "edgemnist"}
    assert [n for n in names if n.startswith("edgemnist")] == ["edgemnist.settings", "edgemnist.settings.IMAGE_SIZE", "edgemnist.settings.NUM_CLASSES"]
