"""Rebuild the reference artifacts in exported/ with the default pipeline and write manifest.json.

    python benchmarks/make_reference.py

Runs `edgemnist train` and `edgemnist export --quantize` (the commands recorded in the manifest),
then copies the int8 model into the package (edgemnist/pretrained/) so `infer` works after install.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    ["edgemnist", "train", "--json"],
    ["edgemnist", "export", "--quantize", "--json"],
]


def main() -> None:
    outputs = []
    for cmd in COMMANDS:
        proc = subprocess.run([sys.executable, "-m", "edgemnist", *cmd[1:]], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.strip().splitlines()[-1]}")
        outputs.append(json.loads(proc.stdout))
    train, export = outputs
    shutil.copyfile(ROOT / "exported/mlp.int8.onnx", ROOT / "edgemnist/pretrained/mlp.int8.onnx")
    files = {}
    for name in ("mlp.pt", "mlp.onnx", "mlp.int8.onnx"):
        blob = (ROOT / "exported" / name).read_bytes()
        files[name] = {"size_bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    manifest = {
        "commands": [" ".join(c) for c in COMMANDS],
        "files": files,
        "packaged": {"edgemnist/pretrained/mlp.int8.onnx": "copy of exported/mlp.int8.onnx"},
        "train": {k: train[k] for k in ("test_accuracy", "seconds", "epochs", "device")},
        "accuracy": {
            "torch": export["torch"]["accuracy"],
            "fp32": export["fp32"]["accuracy"],
            "int8": export["int8"]["accuracy"],
        },
        "parity": {
            "fp32_agreement": export["fp32"]["agreement"],
            "fp32_max_abs_dlogit": export["fp32"]["max_abs_dlogit"],
            "int8_agreement": export["int8"]["agreement"],
            "int8_accuracy_drop_pp": export["int8"]["accuracy_drop_pp"],
            "int8_size_ratio": export["int8"]["size_ratio"],
            "passed": export["passed"],
        },
    }
    (ROOT / "exported/manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
