"""The layers the architectures of model.py are built from, and the output every one of them returns."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class VAEOutput:
    logits: torch.Tensor                         # (B, 10, C, C)
    mu: torch.Tensor                             # (B, D)
    logvar: torch.Tensor                         # (B, D)
    size_logits: Optional[torch.Tensor] = None   # (B, 2, 30): rows, cols (k -> k+1 cells); None in black mode


class Conv3x3(nn.Conv2d):
    """A 3×3 convolution, padding 1. On a 1×1 map a stride-2 one runs at stride 1: the same output (one
    cell: the kernel's centre on the input, the rest on padding), and it sidesteps a oneDNN bug: in bf16
    on the CPU (torch 2.13) the weight gradient of a stride-2 convolution of a 1×1 map is wrong, often
    inf (tests/test_model.py). Small canvases (4×4 and less) reach a 1×1 map before the last stride."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__(c_in, c_out, 3, stride=stride, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == (1, 1):
            return F.conv2d(x, self.weight, self.bias, 1, 1)
        return super().forward(x)


def conv_gelu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(Conv3x3(c_in, c_out, stride), nn.GELU())


def halvings(canvas: int, levels: int) -> list[int]:
    """The encoder's map sizes: canvas, then ceil(/2) per stride-2 conv."""
    sizes = [canvas]
    for _ in range(levels):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def sample_latent(mu: torch.Tensor, logvar: torch.Tensor, sample: bool) -> torch.Tensor:
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu


class ResBlock(nn.Module):
    """x + conv(GELU(norm(conv(x)))): the second conv starts at zero, so a new block is the identity."""

    def __init__(self, c: int):
        super().__init__()
        self.conv_a, self.conv_b = Conv3x3(c, c), Conv3x3(c, c)
        # 8 groups, but at least 2 channels a group: a group of one channel on a 1×1 map has nothing to normalise
        self.norm = nn.GroupNorm(max(1, min(8, c // 2)), c)
        nn.init.zeros_(self.conv_b.weight)
        nn.init.zeros_(self.conv_b.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_b(F.gelu(self.norm(self.conv_a(x))))
