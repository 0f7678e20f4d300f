"""`arcvae.operate`: a chain of operations applied to codes of a slot run, in one call
(slot_operations.py has the pieces; docs/latent.md the operations)."""

from __future__ import annotations

import numpy as np
import torch

from .shape_maps import load_shape_maps
from .slot_code import require_slot_model
from .slot_operations import Operation, apply_chain, parse_chain
from .trained_run import TrainedRun


def operate(
    run: TrainedRun, z, chain: str | list[Operation], slot: int | list[int] = 0
) -> tuple[np.ndarray, list[str | None]]:
    """The chain (`translate(1,0)+rotate_90`, or parsed operations) applied to slot `slot` (one
    for all codes, or one per code; 0 is the first object in reading order) of each code z (N, D)
    of a slot run: the new codes (N, D) float32, and per code None or why the chain cannot apply
    (that code is then as it stood before the step that could not). The run's shape maps are
    loaded, or fitted and kept the first time (minutes on a CPU)."""
    require_slot_model(run, "operations on the code")
    steps = parse_chain(chain) if isinstance(chain, str) else chain
    codes = torch.as_tensor(np.asarray(z), dtype=torch.float32)
    if codes.ndim != 2 or codes.shape[1] != run.net.latent_dim:
        raise ValueError(f"z must be (N, {run.net.latent_dim}), not {tuple(codes.shape)}")
    slots = torch.as_tensor(slot, dtype=torch.long).expand(len(codes))
    if slots.min() < 0 or slots.max() >= run.net.slots:
        raise ValueError(f"slot must be 0..{run.net.slots - 1}, not {slot}")
    moved, problems = apply_chain(
        run.net, load_shape_maps(run), codes, slots.clone(), steps, run.canvas
    )
    return moved.numpy(), problems
