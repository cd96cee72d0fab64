"""The one timing toolkit of `edgemnist bench`, the benchmark scripts and testkit: a model call with no
per-call allocation (`bound_call`), a call repeated for a slice of time (`time_for`), and the one sampler
(`interleaved`), which shares the time between calls in seeded shuffled rounds so that machine noise hits
them alike. onnxruntime and numpy only.
"""

from __future__ import annotations

import random
import time
from typing import Callable

import numpy as np
import onnxruntime as ort

from edgemnist import contract, runtime

ROUNDS = 10


def bound_call(session, input_name: str, x: np.ndarray, width: int) -> Callable[[], object]:
    """IOBinding with pre-bound input and output buffers: no per-call allocation or dict building.

    The call goes to the C++ session the way `InferenceSession.run_with_iobinding` itself does, with
    one preallocated RunOptions: the public wrapper adds ~1.5 µs of Python per call (WebGPU graph
    capture checks), and given a RunOptions it costs ~70 µs (it probes a missing config key, which
    raises). Measured on onnxruntime 1.32.0; falls back to the public call if the internals move."""
    binding = session.io_binding()
    binding.bind_cpu_input(input_name, x)
    out = np.empty((x.shape[0], width), np.float32)
    binding.bind_output(session.get_outputs()[0].name, "cpu", 0, np.float32, out.shape, out.ctypes.data)
    inner, inner_binding = getattr(session, "_sess", None), getattr(binding, "_iobinding", None)
    if inner is None or inner_binding is None or not hasattr(inner, "run_with_iobinding"):
        return lambda keep=(x, out): session.run_with_iobinding(binding)  # the buffers must outlive the binding
    run_options = ort.RunOptions()
    return lambda keep=(x, out, binding): inner.run_with_iobinding(inner_binding, run_options)


def model_call(model: runtime.Model, batch: int) -> Callable[[], object]:
    """`bound_call` of a model on a seeded random batch in its own input type (uint8 for a uint8-input model)."""
    x = np.random.default_rng(0).random((batch, 1, contract.IMAGE_SIZE, contract.IMAGE_SIZE), dtype=np.float32)
    return bound_call(model.session, model.input_name, contract.pixels_to_uint8(x) if model.takes_uint8 else x, contract.NUM_CLASSES)


def time_for(call: Callable[[], object], seconds: float, into: list[float]) -> None:
    clock = time.perf_counter_ns
    end = clock() + int(seconds * 1e9)
    while True:
        t0 = clock()
        call()
        t1 = clock()
        into.append((t1 - t0) / 1000.0)
        if t1 >= end:
            return


def interleaved(calls: dict, seconds: float, rounds: int = ROUNDS, *, warmup: int = 20, seed: int = 0,
                on_round: Callable[[], None] | None = None, group: Callable[[object], object] | None = None) -> dict:
    """The one timing sampler: `seconds` shared by the calls over
    `rounds` rounds, each round in a new seeded shuffled order (machine noise hits every call alike),
    each call repeated for its slice of the round (`seconds` 0: once). `group(key)`: the calls of a
    group run one after the other (the paths given one input), the groups and the calls within each
    in a shuffled order. -> {key: latencies in µs (numpy array)}."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples: dict = {key: [] for key in calls}
    order, rng = list(calls), random.Random(seed)
    groups: dict = {}
    for key in order:
        groups.setdefault(group(key) if group else key, []).append(key)
    names = list(groups)
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            rng.shuffle(groups[name])
            for key in groups[name]:
                time_for(calls[key], seconds / (rounds * len(calls)), samples[key])
        if on_round:
            on_round()
    return {key: np.array(v) for key, v in samples.items()}
