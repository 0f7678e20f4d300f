"""Precision policy: bf16 autocast where the device computes bf16 natively, fp32 elsewhere."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from functools import cache

import torch


@cache
def native_bf16(device_type: str) -> bool:
    """Does this device compute bf16 natively (CUDA; a CPU with AVX-512 BF16 or AMX), not by
    emulation?"""
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    # torch's own CPU probes (private, present since 2.3); without them we cannot tell, so fp32.
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


@dataclass(frozen=True)
class Precision:
    """The run's precision, decided once (`decide`): bf16 autocast on `device` or fp32; losses and
    figures are computed in fp32/fp64 either way."""

    device: torch.device
    bf16: bool

    @classmethod
    def decide(cls, setting: str, device: torch.device) -> Precision:
        """train.precision: bf16, fp32, or auto = bf16 where the device has it natively."""
        return cls(device, setting == "bf16" or (setting == "auto" and native_bf16(device.type)))

    def autocast(self):
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()
