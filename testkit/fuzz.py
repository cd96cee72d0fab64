"""Seeded damage to files, for the fuzzing tests: bit flips, truncation, header damage and splices of
two files, the ways files break in transit, on disk and at the hands of an attacker."""

from __future__ import annotations

import numpy as np

KINDS = ("bit flips", "truncation", "header damage", "splice")


def mutate(blob: bytes, rng: np.random.Generator, kind: str, others: list[bytes] = ()) -> bytes:
    """One damaged copy of `blob`."""
    out = bytearray(blob)
    if kind == "bit flips":  # anywhere, 1 to 30 of them
        for pos in rng.integers(0, len(out), int(rng.integers(1, 31))):
            out[pos] ^= 1 << int(rng.integers(8))
    elif kind == "truncation":
        out = out[: int(rng.integers(0, len(out)))]
    elif kind == "header damage":  # random bytes among the first 64
        for pos in rng.integers(0, min(64, len(out)), int(rng.integers(1, 9))):
            out[pos] = int(rng.integers(256))
    elif kind == "splice":  # the head of this file, the tail of another (or of itself)
        other = others[int(rng.integers(len(others)))] if len(others) else blob
        out = out[: int(rng.integers(1, len(out)))] + other[int(rng.integers(len(other))) :]
    else:
        raise ValueError(kind)
    return bytes(out)


def campaign(originals: list[bytes], n: int, seed: int) -> list[tuple[int, str, bytes]]:
    """n damaged files, (index of the original, kind, bytes), the kinds and originals taken in turn."""
    rng = np.random.default_rng(seed)
    return [(i % len(originals), KINDS[(i // len(originals)) % len(KINDS)],
             mutate(originals[i % len(originals)], rng, KINDS[(i // len(originals)) % len(KINDS)], originals))
            for i in range(n)]
