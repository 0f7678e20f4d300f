"""Batches on the training device: augmentation, epoch order, size-bucket canvases and batch plans.

Augmentation (the 8 symmetries of the square and permutations of colours 1-9) is a batched tensor
function, so batches are built on the training device with no per-sample Python.

Canvases (`data.padding`): in `black` mode every batch is the whole (S, S) canvas, padding included.
In `symbol` mode a grid's canvas is its size bucket (`canvas_sizes`): a batch is cropped to the
largest canvas among its grids (`bucket_batches`, `eval_batches`, `take`), and the model's input
has the token PAD outside each grid (`mark_outside`). Grids stay anchored top-left, so a crop of
the stored (S, S) pixels is the grid on the smaller canvas.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import torch

from ..canvas import N_COLOURS, Padding
from ..config import Config, DataConfig
from .grids import Grids

# ---------------------------------------------------------------- augmentation (batched, on device)


def apply_symmetry(
    pixels: torch.Tensor, sizes: torch.Tensor, sym: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply one of the 8 symmetries of the square per grid, keeping grids anchored top-left.

    sym bits: 4 = transpose, 2 = flip rows, 1 = flip columns. pixels (B, S, S), sizes (B, 2), sym
    (B,).
    """
    B, S, _ = pixels.shape
    transpose = (sym & 4).bool().view(B, 1, 1)
    flip_rows = (sym & 2).bool().view(B, 1, 1)
    flip_cols = (sym & 1).bool().view(B, 1, 1)
    h = sizes[:, 0].view(B, 1, 1)
    w = sizes[:, 1].view(B, 1, 1)
    new_h = torch.where(transpose, w, h)
    new_w = torch.where(transpose, h, w)
    i = torch.arange(S, device=pixels.device).view(1, S, 1)
    j = torch.arange(S, device=pixels.device).view(1, 1, S)
    i0 = torch.where(flip_rows, new_h - 1 - i, i)  # undo the flips, in the output's frame
    j0 = torch.where(flip_cols, new_w - 1 - j, j)
    src_r = torch.where(transpose, j0, i0).clamp(0, S - 1)  # (B, S, S)
    src_c = torch.where(transpose, i0, j0).clamp(0, S - 1)
    flat = pixels.view(B, S * S).gather(1, (src_r * S + src_c).view(B, S * S)).view(B, S, S)
    inside = (i < new_h) & (j < new_w)
    out = torch.where(inside, flat, torch.zeros_like(flat))
    return out, torch.cat([new_h.view(B, 1), new_w.view(B, 1)], dim=1)


def random_colour_perms(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n, 10) lookup tables that permute colours 1-9 and keep black (0) black."""
    perms = torch.rand(n, N_COLOURS - 1, generator=generator, device=device).argsort(dim=1) + 1
    return torch.cat([torch.zeros(n, 1, dtype=perms.dtype, device=device), perms], dim=1)


def augment(
    pixels: torch.Tensor, sizes: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random symmetry and colour permutation per grid: pixels (B, S, S) uint8 (black outside the
    grids), sizes (B, 2) -> the new pixels (B, S, S) uint8 and sizes (B, 2) (a transpose swaps
    them).

    The canvas S may be any size holding every grid (a bucket's crop): the draws do not depend on
    it.
    """
    B = pixels.shape[0]
    sym = torch.randint(0, 8, (B,), generator=generator, device=pixels.device)
    out, new_sizes = apply_symmetry(pixels, sizes, sym)
    perms = random_colour_perms(B, generator, pixels.device).to(torch.uint8)
    return perms.gather(1, out.view(B, -1).long()).view_as(out), new_sizes


def epoch_indices(
    n_grids: int, n_samples: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """`n_samples` indices into the grids: whole shuffled passes, so every grid is seen evenly."""
    passes = math.ceil(n_samples / n_grids)
    order = [torch.randperm(n_grids, generator=generator, device=device) for _ in range(passes)]
    return torch.cat(order)[:n_samples]


def batch_generator(seed: int, epoch: int, batch: int, device: torch.device) -> torch.Generator:
    """A generator seeded by (seed, epoch, batch), so any batch can be rebuilt on resume."""
    g = torch.Generator(device=device)
    # torch takes seeds below 2**64; the mix overflows that from seed ~2e7 on, so reduce it.
    g.manual_seed(((seed * 1_000_003 + epoch) * 1_000_003 + batch) % 2**63)
    return g


# ---------------------------------------------------------------- canvases (size buckets)


def canvases_of(sizes: torch.Tensor, cfg: DataConfig) -> torch.Tensor:
    """(N,) int64 canvases for `data.padding`: the bucket in symbol mode, grid_size for every grid
    in black mode."""
    return Padding(cfg.padding).canvases(sizes, cfg.bucket_multiple, cfg.grid_size)


def take(grids: Grids, indices: torch.Tensor, canvas: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The grids at `indices` on a (canvas, canvas) crop: pixels (B, canvas, canvas) uint8 and sizes
    (B, 2).

    Copies only the crop. Every grid must fit the canvas (the bucket plans guarantee it).
    """
    return grids.pixels[:, :canvas, :canvas][indices], grids.sizes[indices]


def bucket_batches(
    order: torch.Tensor, canvases: torch.Tensor, batch_size: int, generator: torch.Generator
) -> list[tuple[int, torch.Tensor]]:
    """An epoch's batches as (canvas, indices), every batch full, in a random order drawn from
    `generator`.

    order: the epoch's grid indices (`epoch_indices`), length a multiple of batch_size; canvases
    (N,) each grid's bucket. The indices are grouped by canvas, smallest first, keeping their order
    within a canvas; a bucket's leftover (< batch_size) is carried up into the next larger canvas (a
    grid fits any canvas >= its own), so a batch's canvas is the largest bucket among its grids. The
    indices drawn are exactly `order` (as a multiset), so every grid is as likely as without
    buckets.
    """
    n = order.numel()
    if batch_size < 1 or n == 0 or n % batch_size:
        raise ValueError(f"bucket_batches: {n} indices do not make whole batches of {batch_size}")
    by_canvas, rank = canvases[order].sort(stable=True)
    grouped = order[rank].view(n // batch_size, batch_size)
    last = by_canvas.view(n // batch_size, batch_size)[:, -1]  # the largest canvas of each batch
    shuffle = torch.randperm(n // batch_size, generator=generator, device=generator.device).to(
        order.device
    )
    grouped, last = grouped[shuffle], last[shuffle].tolist()  # the one host sync of the plan
    return list(zip(last, grouped.unbind(0)))


def eval_batches(
    grids: Grids, batch_size: int, canvases: torch.Tensor
) -> list[tuple[int, torch.Tensor]]:
    """Every grid exactly once, as (canvas, indices) batches of at most batch_size, grouped by
    canvas (smallest first, the grids' order kept within a canvas), no shuffling."""
    if batch_size < 1:
        raise ValueError(f"eval_batches: batch_size {batch_size} must be >= 1")
    by_canvas, order = canvases.sort(stable=True)
    values, counts = torch.unique_consecutive(by_canvas, return_counts=True)
    batches = []
    start = 0
    for canvas, count in zip(values.tolist(), counts.tolist()):
        for first in range(start, start + count, batch_size):
            batches.append((canvas, order[first : min(first + batch_size, start + count)]))
        start += count
    return batches


# ---------------------------------------------------------------- what a step trains on


class Batch(NamedTuple):
    """What a step trains on and a figure is measured on."""

    # (B, C, C) uint8: the model's input and target; PAD outside the grids in symbol mode
    grids: torch.Tensor
    sizes: torch.Tensor  # (B, 2) each grid's rows and cols


def model_input(grids: torch.Tensor, sizes: torch.Tensor, padding: Padding) -> Batch:
    """Grids on a canvas as the model takes them: in symbol mode the padding is marked PAD."""
    return Batch(padding.model_input(grids, sizes), sizes)


def epoch_plan(
    train: Grids, cfg: Config, epoch: int, n_batches: int
) -> list[tuple[int, torch.Tensor]]:
    """The epoch's `n_batches` global batches as (canvas, grid indices), rebuilt from (seed, epoch)
    on resume.

    The grids drawn are the first n_batches·batch_size of shuffled passes over the data
    (`epoch_indices`): every grid equally often. Black mode batches them in that order on the one
    canvas; symbol mode groups the same grids into size buckets (`bucket_batches`), so a batch is
    padded only to its bucket.
    """
    size = cfg.train.batch_size
    generator = batch_generator(cfg.train.seed, epoch, 0, train.pixels.device)
    order = epoch_indices(len(train), cfg.data.samples_per_epoch, generator, train.pixels.device)[
        : n_batches * size
    ]
    if not Padding(cfg.data.padding).symbol:
        return [(cfg.data.grid_size, chunk) for chunk in order.view(n_batches, size).unbind(0)]
    return bucket_batches(order, canvases_of(train.sizes, cfg.data), size, generator)


def make_batch(
    train: Grids, plan: list, cfg: Config, epoch: int, b: int, rank: int = 0, ranks: int = 1
) -> Batch:
    """Process `rank` of `ranks`'s share of global batch b, cropped to its canvas and augmented on
    the data's device."""
    chunk = b * ranks + rank  # plan entry k; a single process takes entry b
    canvas, idx = plan[chunk]
    grids, sizes = take(train, idx, canvas)
    if cfg.data.augment:
        grids, sizes = augment(
            grids, sizes, batch_generator(cfg.train.seed, epoch, chunk + 1, grids.device)
        )
    return model_input(grids, sizes, Padding(cfg.data.padding))


def grid_batches(
    grids: Grids, cfg: Config, batch_size: int
) -> Iterator[tuple[torch.Tensor, Batch]]:
    """Every grid once, unaugmented, as (indices, batch) on its own canvas, grouped by canvas."""
    for canvas, idx in eval_batches(grids, batch_size, canvases_of(grids.sizes, cfg.data)):
        yield idx, model_input(*take(grids, idx, canvas), Padding(cfg.data.padding))
