"""Timing shared by the benchmarks: one interleaved sampler, so a slow phase of a noisy machine hits
every path alike."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def interleaved(cases: Sequence[tuple[str, object]], paths: dict[str, Callable], rounds: int,
                seed: int = 1) -> dict[str, dict[str, list[float]]]:
    """Seconds per call for every (set, input) case and every path: each round visits the cases in a
    new shuffled order and runs the paths on each in a shuffled order. -> {set: {path: [seconds]}}."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, list[float]]] = {s: {k: [] for k in paths} for s, _ in cases}
    names = list(paths)
    for _ in range(rounds):
        for j in rng.permutation(len(cases)):
            s, x = cases[j]
            for name in rng.permutation(names):
                t = time.perf_counter()
                paths[name](x)
                out[s][name].append(time.perf_counter() - t)
    return out
