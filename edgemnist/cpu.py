"""Which CPU this is and which int8 kernel family onnxruntime's MLAS runs on it.  [runtime side]

Every figure edgemnist reports names the CPU it came from: int8 results depend on the kernels.
MLAS picks its u8s8 GEMM kernel from the CPU flags: AMX, then AVX-512 VNNI, then AVX-VNNI (exact
int32 dot products), then AVX-512BW or AVX2 (`vpmaddubsw`: the sum of two adjacent u8 x s8 products
saturates at int16), on ARM64 the i8mm / dot-product / NEON kernels (exact).
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

X86_FEATURES = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
ARM_FEATURES = ("asimd", "asimddp", "i8mm", "sve", "sme")
# int8 kernel families whose u8 x s8 pair sums saturate at int16 (x86 without VNNI/AMX)
SATURATING_FAMILIES = ("avx512bw", "avx2", "sse")


def int8_kernels(arch: str, flags: set[str]) -> str:
    """The u8s8 GEMM kernel family MLAS dispatches to on a CPU with these flags."""
    if arch in ("aarch64", "arm64"):
        return next((f"arm64-{k}" for k in ("i8mm", "asimddp") if k in flags), "arm64-neon")
    for flag, family in (("amx_int8", "amx"), ("avx512_vnni", "avx512-vnni"), ("avx_vnni", "avx-vnni"),
                         ("avx512bw", "avx512bw"), ("avx2", "avx2")):
        if flag in flags:
            return family
    return "sse"


# Linux AT_HWCAP / AT_HWCAP2 bits on aarch64 (asm/hwcap.h): what the kernel (or qemu) says the CPU has
_AUXV_BITS = {16: {"asimd": 1 << 1, "asimddp": 1 << 20, "sve": 1 << 22}, 26: {"i8mm": 1 << 13, "sme": 1 << 23}}


def _arm_hwcaps() -> set[str]:
    """aarch64 features from the auxiliary vector (authoritative, and emulated faithfully by qemu-user,
    whose /proc/cpuinfo may be a stand-in)."""
    try:
        raw = Path("/proc/self/auxv").read_bytes()
    except OSError:
        return set()
    words = [int.from_bytes(raw[i : i + 8], "little") for i in range(0, len(raw) - 7, 8)]
    values = dict(zip(words[0::2], words[1::2]))
    return {name for key, bits in _AUXV_BITS.items() for name, bit in bits.items() if values.get(key, 0) & bit}


@functools.cache
def cpu_info() -> dict:
    """Model name, logical CPUs, the feature flags that decide int8/fp32 speed, and the int8 kernels."""
    arch = platform.machine().lower()
    arm = arch in ("aarch64", "arm64")
    flags: set[str] = set()
    model = platform.processor() or arch
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("flags", "features") and not flags:
                flags = set(value.split())
            elif key in ("model name", "cpu model") and value.strip():
                model = value.strip()
    except OSError:
        pass
    if arm:
        flags |= _arm_hwcaps()
    wanted = ARM_FEATURES if arm else X86_FEATURES
    family = int8_kernels(arch, flags)
    return {
        "model": model,
        "arch": arch,
        "logical_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "features": {f: f in flags for f in wanted},
        "int8_kernels": family,
        "u8s8_saturates": family in SATURATING_FAMILIES,
    }


def describe(info: dict | None = None) -> str:
    """One line for people: 'AMD EPYC (x86_64; int8 kernels: avx2; avx2, fma)'."""
    info = info or cpu_info()
    feats = ", ".join(f for f, on in info["features"].items() if on) or "no listed features"
    return f"{info['model']} ({info['arch']}, {info['logical_cpus']} CPUs; int8 kernels: {info['int8_kernels']}; {feats})"
