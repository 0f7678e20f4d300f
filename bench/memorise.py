"""How well each architecture memorises one real batch in the same number of steps.

    python bench/memorise.py                       # conv_any against resnet, 200 steps
    python bench/memorise.py --steps 500 conv_any resnet patch

What `resnet`'s residual blocks and learned upsampling are for (docs/architectures.md): the first 32
ARC-AGI-1 training grids on the 30×30 canvas in symbol mode, each architecture built by
`build_model` from the same small widths (16/32/64, 32 global latent dims, no cells) and the same
seed, then Adam at β = 0 with plain cross-entropy on that one batch. Printed: the accuracy over the
grids' own pixels at z = μ after the steps, one line per architecture. A measurement, not a test:
the figure depends on the seed, the steps and the machine's kernels, so it lives here and in
docs/records/, not in the unit suite.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's arcvae
from arcvae.canvas import PAD, mark_outside
from arcvae.config_io import load_config
from arcvae.data.grids import load_arc_grids, pad_grids
from arcvae.models.build import build_model
from arcvae.training.losses import LossOptions, elbo

SMALL = [
    "model.latent_dim=32",
    "model.cell_dims=0",
    "model.embed_dim=8",
    "model.channels=[16,32,64]",
]


def memorise(arch: str, steps: int, lr: float, seed: int = 0, n_grids: int = 32) -> float:
    """Own-pixel accuracy at z = μ after `steps` Adam steps on the first `n_grids` grids."""
    cfg = load_config(None, [f"model.arch={arch}", "data.padding=symbol", *SMALL])
    torch.manual_seed(seed)
    model = build_model(cfg)
    grids = pad_grids(load_arc_grids("arc1", "training")[:n_grids], 30)
    tokens = mark_outside(grids.pixels, grids.sizes)  # (B, 30, 30), PAD outside each grid
    options = LossOptions(recon="ce", padding="symbol")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = elbo(model(tokens, sample=False), tokens, grids.sizes, 0.0, options).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        pred = model(tokens, sample=False).logits.argmax(1)  # (B, 30, 30)
    own = tokens != PAD
    return (pred == tokens)[own].float().mean().item()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("archs", nargs="*", default=["conv_any", "resnet"])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args(argv)
    accuracy = {}
    for arch in args.archs:
        start = time.perf_counter()
        accuracy[arch] = memorise(arch, args.steps, args.lr)
        seconds = time.perf_counter() - start
        figure = f"own-pixel accuracy after {args.steps} steps: {accuracy[arch]:.1%}"
        print(f"{arch:10s} {figure} ({seconds:.0f} s)")
    return accuracy


if __name__ == "__main__":
    main()
