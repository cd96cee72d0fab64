"""Rebuild the reference artifacts in exported/ with the default pipeline and write manifest.json.

    python -m benchmarks.make_reference [--reuse-checkpoint]

Runs `edgemnist train` and `edgemnist export --quantize` (the commands recorded in the manifest),
then copies the int8 model into the package (edgemnist/pretrained/) so `infer` works after install.
`--reuse-checkpoint` keeps exported/mlp.pt (and the manifest's training record) and re-exports only.
The manifest records where the parity gate ran: onnxruntime version, CPU, int8 kernel family.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from edgemnist.settings import QuantSettings

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = [
    ["edgemnist", "train", "--json"],
    ["edgemnist", "export", "--quantize", "--json"],
]


def run(cmd: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-m", "edgemnist", *cmd[1:]], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description="Rebuild exported/ (train, export --quantize) and write manifest.json.")
    parser.add_argument("--reuse-checkpoint", action="store_true", help="keep exported/mlp.pt and re-export only")
    args = parser.parse_args()
    manifest_path = ROOT / "exported/manifest.json"
    if args.reuse_checkpoint:
        train = json.loads(manifest_path.read_text())["train"]
    else:
        train = run(COMMANDS[0])
    export = run(COMMANDS[1])
    shutil.copyfile(ROOT / "exported/mlp.int8.onnx", ROOT / "edgemnist/pretrained/mlp.int8.onnx")
    files = {}
    for name in ("mlp.pt", "mlp.onnx", "mlp.int8.onnx"):
        blob = (ROOT / "exported" / name).read_bytes()
        files[name] = {"size_bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    manifest = {
        "commands": [" ".join(c) for c in COMMANDS],
        "files": files,
        "packaged": {"edgemnist/pretrained/mlp.int8.onnx": "copy of exported/mlp.int8.onnx"},
        "train": {k: v for k, v in train.items() if k not in ("history", "config", "checkpoint")},  # train --json's record
        "accuracy": {
            "torch": export["torch"]["accuracy"],
            "fp32": export["fp32"]["accuracy"],
            "int8": export["int8"]["accuracy"],
            "int8_reference": export["int8"]["reference"]["accuracy"],
        },
        "calibration": export["calibration"] | {
            "ece_test": {p: export[p]["calibration"]["ece"] for p in ("torch", "fp32", "int8")},
            "median_confidence": {p: export[p]["calibration"]["median_confidence"] for p in ("torch", "fp32", "int8")},
        },
        "verified_on": {
            "onnxruntime": export["onnxruntime"], "cpu": export["cpu"]["model"], "arch": export["cpu"]["arch"],
            "int8_kernels": export["cpu"]["int8_kernels"],
            "features": [f for f, on in export["cpu"]["features"].items() if on],
        },
        "int8_format": {
            "settings": json.loads(QuantSettings().metadata()),
            **{k: export["int8"]["saturation"][k] for k in ("worst_pair_sum", "int16_max", "saturation_free")},
        },
        "parity": {
            "fp32_agreement": export["fp32"]["agreement"],
            "fp32_max_abs_dlogit": export["fp32"]["max_abs_dlogit"],
            "int8_agreement": export["int8"]["agreement"],
            "int8_accuracy_drop_pp": export["int8"]["accuracy_drop_pp"],
            "int8_size_ratio": export["int8"]["size_ratio"],
            "int8_fused_vs_reference_agreement": export["int8"]["reference"]["agreement"],
            "int8_fused_vs_reference_max_abs_dlogit": export["int8"]["reference"]["max_abs_dlogit"],
            "passed": export["passed"],
        },
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
