"""Which arithmetic a training run uses: bf16 autocast where the hardware has it, else fp32.

bf16 autocast keeps fp32 master weights (and an fp32 loss); only the matrix products run in
bf16. It pays only where the hardware does bf16 natively: CUDA GPUs that report it, and CPUs with
AVX512_BF16 or AMX-BF16 (Zen 4, Sapphire Rapids and later). Elsewhere oneDNN either emulates it
(a step ~2.5x slower than fp32) or, on AVX2-only CPUs, has no bf16 LSTM kernel at all, so "auto"
never picks it there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

NATIVE_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (or of the given text); empty off Linux."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        if not sys.platform.startswith("linux") or not path.exists():
            return set()
        cpuinfo = path.read_text(errors="replace")
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    return any(flag in cpu_flags(cpuinfo) for flag in NATIVE_CPU_BF16_FLAGS)


def use_bf16(precision: str, device: torch.device, cpuinfo: str | None = None) -> bool:
    """bf16 autocast for "bf16", never for "fp32", and for "auto" on a CUDA GPU with bf16 or a
    CPU with native bf16 instructions. "bf16" on a CPU without them raises ValueError."""
    if precision == "fp32":
        return False
    if precision == "bf16":
        if device.type == "cpu" and not cpu_has_native_bf16(cpuinfo):
            # oneDNN has no bf16 LSTM kernel for such CPUs: it fails at the first step.
            raise ValueError(
                "precision bf16: this CPU has no native bf16 (avx512_bf16 or amx_bf16); "
                "use precision auto or fp32"
            )
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16(cpuinfo)
