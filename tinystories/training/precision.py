"""Precision that fits the hardware: bf16 on a CPU only where the CPU computes in bf16 natively.

On a CPU with AVX512-BF16 or AMX (or an Arm CPU with the BF16 extension) bf16 autocast is faster than fp32. On one
without (an AVX2-only CPU, e.g. many AMD EPYCs), torch runs every bf16 matmul in a scalar fallback, measured 10-20x
slower than fp32 (docs/training.md). ``bf16: true`` there trains in fp32, with one warning, unless
``bf16_on_slow_cpu: true`` keeps bf16 anyway. GPUs are not affected.
"""

from __future__ import annotations

import functools
import os
import platform


def _cpuinfo_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (x86 ``flags``, Arm ``Features``); empty where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip().lower() in ("flags", "features"):
                    return set(value.split())
    except OSError:
        pass
    return set()


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls natively: torch's own checks (AVX512-BF16, AMX) where it has them,
    else the CPU flags (``avx512_bf16``, ``amx_bf16``; Arm ``bf16``; Apple's ``FEAT_BF16``). Unknown: False."""
    import torch

    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i386", "i686") and all(callable(check) for check in checks):
        return any(check() for check in checks)
    if _cpuinfo_flags() & {"avx512_bf16", "amx_bf16", "bf16"}:
        return True
    if platform.system() == "Darwin" and machine == "arm64":  # Apple M2 and later have FEAT_BF16
        import subprocess

        try:
            found = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True)
        except OSError:
            return False
        return found.stdout.strip() == "1"
    return False


def cpu_precision_note(bf16: bool, mixed_precision_env: str | None = None) -> str | None:
    """The warning to give when bf16 is asked for (``bf16: true``, or ``mixed_precision: bf16`` in an accelerate
    config, seen as ``ACCELERATE_MIXED_PRECISION``) for CPU training on a CPU without native bf16; None when bf16
    is fine or not asked for."""
    env = os.environ.get("ACCELERATE_MIXED_PRECISION", "") if mixed_precision_env is None else mixed_precision_env
    asked = "bf16: true" if bf16 else ("accelerate's mixed_precision: bf16" if env == "bf16" else None)
    if asked is None or cpu_has_native_bf16():
        return None
    return (
        f"{asked} on a CPU without native bf16 (no AVX512-BF16/AMX found): bf16 matmuls would run in a scalar fallback, "
        "10-20x slower than fp32, so this run trains in fp32 (bf16_on_slow_cpu: true keeps bf16)"
    )


__all__ = ["cpu_has_native_bf16", "cpu_precision_note"]
