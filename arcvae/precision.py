"""Precision policy: bf16 autocast where the device computes bf16 natively, fp32 elsewhere."""

from __future__ import annotations

from contextlib import nullcontext
from functools import cache

import torch

from .config import Config


@cache
def native_bf16(device_type: str) -> bool:
    """Does this device compute bf16 natively (CUDA; a CPU with AVX-512 BF16 or AMX), not by
    emulation?"""
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    # torch's own CPU probes (private, present since 2.3); without them we cannot tell, so fp32.
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def uses_bf16(cfg: Config, device: torch.device) -> bool:
    """train.precision: bf16, fp32, or auto = bf16 where the device has it natively."""
    return cfg.train.precision == "bf16" or (
        cfg.train.precision == "auto" and native_bf16(device.type)
    )


def autocast(cfg: Config, device: torch.device):
    """bf16 autocast where `uses_bf16`; losses and figures are still computed in fp32/fp64."""
    return (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if uses_bf16(cfg, device)
        else nullcontext()
    )
