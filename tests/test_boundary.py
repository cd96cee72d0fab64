"""The torch-free boundary: runtime-side modules, everything in edgemnist/ outside edgemnist/training/,
import neither torch, torchvision, onnx, onnxscript nor the training side at import time. Inside a
function (a command that needs it) is allowed. Checked twice: statically (every import statement that
runs at import time, whatever block holds it) and by importing every runtime module in a process
where those packages cannot be imported."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "edgemnist"
FORBIDDEN = ("torch", "torchvision", "onnx", "onnxscript", "edgemnist.training")
RUNTIME_SIDE = sorted(p for p in PACKAGE.rglob("*.py") if "training" not in p.relative_to(PACKAGE).parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_time_imports(source: str, module: str = "edgemnist.x") -> list[str]:
    """Modules imported when the module is imported: every import statement outside function bodies
    (module level, and inside if/try/except/else/finally/with/for/while/match blocks and class
    bodies, which run at import time), relative imports resolved against `module`."""
    found: list[str] = []
    package = module.split(".")

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return  # runs when called, not when imported
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x, from ..training import y: relative to this module's package
                base = ".".join(package[: len(package) - node.level] + ([base] if base else []))
            found.extend([base] + [f"{base}.{alias.name}" for alias in node.names])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def forbidden(names: list[str]) -> list[str]:
    return [n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]


@pytest.mark.parametrize("path", RUNTIME_SIDE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_runtime_side_module_imports_nothing_of_the_training_side(path):
    assert forbidden(import_time_imports(path.read_text(), module_name(path))) == []


def test_the_check_sees_what_it_must():
    seen = lambda source: forbidden(import_time_imports(source, "edgemnist.infer"))  # noqa: E731
    assert seen("import torch\nfrom edgemnist.training import train\n") == ["torch", "edgemnist.training", "edgemnist.training.train"]
    assert seen("from edgemnist import training\n") == ["edgemnist.training"]
    assert seen("try:\n    import onnx\nexcept ImportError:\n    pass\n") == ["onnx"]
    assert seen("try:\n    import x\nexcept ImportError:\n    import onnx\n") == ["onnx"]  # in the handler
    assert seen("try:\n    pass\nfinally:\n    import onnx\n") == ["onnx"]
    assert seen("from .training import train\n") == ["edgemnist.training", "edgemnist.training.train"]  # relative
    assert seen("from . import training\n") == ["edgemnist.training"]
    assert forbidden(import_time_imports("from ..training import train\n", "edgemnist.webapp.x")) == ["edgemnist.training", "edgemnist.training.train"]
    assert seen("class A:\n    import torch\n") == ["torch"]  # a class body runs at import time
    assert seen("for _ in range(1):\n    import onnxscript\n") == ["onnxscript"]
    assert seen("while False:\n    import torchvision\n") == ["torchvision"]
    assert seen("with open('x') as f:\n    import torch\n") == ["torch"]
    assert seen("def f():\n    import torch\n") == []
    assert seen("class A:\n    def f(self):\n        import torch\n") == []
    assert seen("f = lambda: __import__('torch')\n") == []
    assert seen("import onnxruntime\nimport torchx\n") == []


BLOCKED = """
import importlib, importlib.abc, json, sys
tried = []

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "onnx", "onnxscript") or name.startswith("edgemnist.training"):
            tried.append(name)
            raise ImportError(f"{name} is blocked here")
        return None

sys.meta_path.insert(0, Blocked())
failed = {}
for module in MODULES:
    try:
        importlib.import_module(module)
    except ImportError as e:
        failed[module] = str(e)
print(json.dumps({"tried": tried, "failed": failed}))
"""


def test_every_runtime_module_imports_where_torch_and_onnx_cannot():
    """At run time, whatever form the import takes (importlib, __import__, a plugin): each runtime-side
    module imports in a process where the training side raises ImportError, and none tries it.
    edgemnist.ray needs its extra: it is checked where Ray is installed."""
    modules = [module_name(p) for p in RUNTIME_SIDE]
    if importlib.util.find_spec("ray") is None:
        modules.remove("edgemnist.ray")
    code = BLOCKED.replace("MODULES", repr(modules))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == {"tried": [], "failed": {}}
    assert len(modules) >= 20 and "edgemnist.cli" in modules and "edgemnist.webapp" in modules


def test_the_contract_module_needs_only_numpy():
    names = import_time_imports((PACKAGE / "contract.py").read_text(), "edgemnist.contract")
    assert {n.split(".")[0] for n in names} <= {"__future__", "numpy", "edgemnist"}
    assert [n for n in names if n.startswith("edgemnist")] == ["edgemnist.settings", "edgemnist.settings.IMAGE_SIZE", "edgemnist.settings.NUM_CLASSES"]


def test_human_output_is_written_in_one_module():
    """Tables and the commands' lines for people come from edgemnist/show.py alone: the other modules
    return reports (what --json prints)."""
    writers = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "edgemnist").rglob("*.py")
                     if re.search(r"rich\.table|\bTable\(", p.read_text()))
    assert writers == ["edgemnist/show.py"]
