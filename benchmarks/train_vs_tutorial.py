"""Time-to-accuracy: the default `edgemnist train` vs the tutorial recipe, same machine, same run.

    python -m benchmarks.train_vs_tutorial [--json out.json]

Tutorial recipe (pytorch/examples style): MLP 784-512-256-128-64-10 with ReLU, SGD lr 0.01
momentum 0.5, batch 64, torchvision MNIST + DataLoader (ToTensor, Normalize), 10 epochs.
Both runs read the same verified MNIST files; both report test accuracy after every epoch with the
wall time since their start (data loading included).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def tutorial(mnist_files: dict[str, bytes], epochs: int = 10) -> list[dict]:
    from torchvision import datasets, transforms

    start = time.perf_counter()
    root = Path(tempfile.mkdtemp())
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, blob in mnist_files.items():  # torchvision's own layout: no download
        (raw / name).write_bytes(blob)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = torch.utils.data.DataLoader(datasets.MNIST(root, train=True, transform=tf), batch_size=64, shuffle=True)
    test = torch.utils.data.DataLoader(datasets.MNIST(root, train=False, transform=tf), batch_size=1000)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        for x, y in train:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test:
                correct += (model(x).argmax(1) == y).sum().item()
        history.append({"epoch": epoch, "test_accuracy": correct / 10000, "seconds": time.perf_counter() - start})
        print(f"tutorial  epoch {epoch:2d}: {correct / 100:.2f}%  {history[-1]['seconds']:.1f} s", file=sys.stderr)
    shutil.rmtree(root)
    return history


def edgemnist_default() -> list[dict]:
    from edgemnist.settings import MLPConfig, TrainConfig
    from edgemnist.training import train

    start = time.perf_counter()
    history = []

    def on_epoch(epoch, loss, acc):
        history.append({"epoch": epoch, "test_accuracy": acc, "seconds": time.perf_counter() - start})
        print(f"edgemnist epoch {epoch:2d}: {acc * 100:.2f}%  {history[-1]['seconds']:.1f} s", file=sys.stderr)

    train.data._load.cache_clear()  # data loading counts: read and verify the files again
    train.train(MLPConfig(), TrainConfig(), device="cpu", on_epoch=on_epoch)
    return history


def time_to(history: list[dict], target: float) -> float | None:
    return next((h["seconds"] for h in history if h["test_accuracy"] >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from edgemnist import data

    files = data.fetch(quiet=True)
    ours = edgemnist_default()
    theirs = tutorial(files)
    result = {"edgemnist": ours, "tutorial": theirs, "threads": torch.get_num_threads()}
    print("| recipe | final test accuracy | wall time | time to 97.5% | time to 99.0% |")
    print("| --- | --- | --- | --- | --- |")
    for name, h in (("edgemnist train (default)", ours), ("tutorial (SGD 0.01/0.5, batch 64, 10 epochs)", theirs)):
        fmt = lambda s: f"{s:.1f} s" if s is not None else "never"  # noqa: E731
        print(f"| {name} | {h[-1]['test_accuracy']:.2%} | {h[-1]['seconds']:.1f} s | {fmt(time_to(h, 0.975))} | {fmt(time_to(h, 0.99))} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
