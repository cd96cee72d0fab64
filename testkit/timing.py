"""Per-input timing for the benchmarks that run many inputs through several paths, on the one sampler
(`edgemnist.timing.interleaved`): each round visits every input in a new shuffled order and runs the
paths on it one after the other, in a shuffled order, once each."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Sequence

from edgemnist.timing import interleaved


def per_input(cases: Sequence[tuple[str, object]], paths: dict[str, Callable], rounds: int,
              seed: int = 1) -> dict[str, dict[str, list[float]]]:
    """Seconds per call for every (set, input) case and every path -> {set: {path: [seconds]}}."""
    calls = {(j, name): functools.partial(fn, x) for j, (_, x) in enumerate(cases) for name, fn in paths.items()}
    latencies = interleaved(calls, 0.0, rounds, warmup=0, seed=seed, group=lambda key: key[0])
    out: dict[str, dict[str, list[float]]] = {s: {name: [] for name in paths} for s, _ in cases}
    for (j, name), us in latencies.items():
        out[cases[j][0]][name].extend((us / 1e6).tolist())
    return out


def timing_parser(doc: str, seconds: float, seconds_help: str = "timed seconds per model and batch size") -> argparse.ArgumentParser:
    """The options every speed benchmark takes: its docstring's first line as the description,
    `--seconds` of timing and `--json` (print the figures as one JSON object instead of a table)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=seconds, help=seconds_help)
    ap.add_argument("--json", action="store_true")
    return ap
