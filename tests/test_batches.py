"""Batches on the real ARC data: augmentation (the 8 symmetries against a numpy reference, colour
permutations, determinism), epoch order, size buckets and symbol-mode batches (canvases, the epoch
plan, eval batches, the PAD marking), and augmentation's new sizes on a bucket's crop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from arcvae.canvas import PAD, canvas_sizes, inside, mark_outside
from arcvae.config import DataConfig
from arcvae.data.batches import (
    apply_symmetry,
    augment,
    batch_generator,
    bucket_batches,
    canvases_of,
    epoch_indices,
    eval_batches,
    random_colour_perms,
    take,
)
from arcvae.data.grids import Grids, load_arc_grids, pad_grids
from arcvae.errors import DataError

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def arc1_training() -> list[np.ndarray]:
    return load_arc_grids("arc1", "training")


@pytest.fixture(scope="module")
def arc1(arc1_training) -> Grids:
    return pad_grids(arc1_training, 30)


def _numpy_symmetry(grid: np.ndarray, sym: int) -> np.ndarray:
    """The reference: sym bits 4 = transpose, then 2 = flip rows, 1 = flip columns."""
    out = grid.T if sym & 4 else grid
    if sym & 2:
        out = np.flip(out, 0)
    if sym & 1:
        out = np.flip(out, 1)
    return out


def _histogram(grid: np.ndarray) -> np.ndarray:
    return np.bincount(grid.ravel(), minlength=10)


# ---------------------------------------------------------------- augmentation


@pytest.fixture(scope="module")
def asymmetric_grids(arc1_training) -> list[np.ndarray]:
    """Real non-square grids up to 12x12 whose 8 images differ (so any mix-up of symmetries
    shows)."""
    chosen = []
    for g in arc1_training:
        if g.shape[0] != g.shape[1] and max(g.shape) <= 12:
            images = {
                (_numpy_symmetry(g, s).shape, _numpy_symmetry(g, s).tobytes()) for s in range(8)
            }
            if len(images) == 8:
                chosen.append(g)
        if len(chosen) == 16:
            return chosen
    raise AssertionError("not enough asymmetric grids in arc1 training")


def test_the_numpy_reference_is_the_dihedral_group(asymmetric_grids):
    g = asymmetric_grids[0]
    expected = [np.rot90(g, k) for k in range(4)] + [np.rot90(np.fliplr(g), k) for k in range(4)]
    ours = [_numpy_symmetry(g, s) for s in range(8)]
    assert {(e.shape, e.tobytes()) for e in expected} == {(o.shape, o.tobytes()) for o in ours}


@pytest.mark.parametrize("sym", range(8))
def test_each_symmetry_equals_padding_the_numpy_transformed_grid(asymmetric_grids, sym):
    padded = pad_grids(asymmetric_grids, 12)
    out, sizes = apply_symmetry(padded.pixels, padded.sizes, torch.full((len(padded),), sym))
    expected = pad_grids(
        [np.ascontiguousarray(_numpy_symmetry(g, sym)) for g in asymmetric_grids], 12
    )
    assert torch.equal(out, expected.pixels)
    assert torch.equal(sizes, expected.sizes)
    # a bijection of the content
    for g, o, (h, w) in zip(asymmetric_grids, out.numpy(), sizes.tolist()):
        assert (h, w) == (g.shape[::-1] if sym & 4 else g.shape)
        assert np.array_equal(_histogram(o[:h, :w]), _histogram(g))


def test_the_8_images_of_an_asymmetric_grid_are_distinct(asymmetric_grids):
    padded = pad_grids(asymmetric_grids[:1] * 8, 12)
    out, sizes = apply_symmetry(padded.pixels, padded.sizes, torch.arange(8))
    assert len({(tuple(s), o.tobytes()) for s, o in zip(sizes.tolist(), out.numpy())}) == 8


def test_symmetries_of_mixed_batches_use_each_grids_own_size(arc1_training):
    padded = pad_grids(arc1_training[:64], 30)
    sym = torch.arange(64) % 8
    out, sizes = apply_symmetry(padded.pixels, padded.sizes, sym)
    for g, o, s, k in zip(arc1_training[:64], out.numpy(), sizes.tolist(), sym.tolist()):
        ref = _numpy_symmetry(g, k)
        assert s == list(ref.shape)
        assert np.array_equal(o[: ref.shape[0], : ref.shape[1]], ref) and o.sum() == ref.sum()


def test_colour_permutations_keep_black_and_permute_1_to_9():
    perms = random_colour_perms(500, torch.Generator().manual_seed(0), CPU)
    assert (perms[:, 0] == 0).all()
    assert (perms[:, 1:].sort(dim=1).values == torch.arange(1, 10)).all()
    assert len({tuple(p) for p in perms.tolist()}) > 400  # really random, not a few fixed tables


def test_augment_preserves_black_and_permutes_the_colour_histogram(arc1_training):
    padded = pad_grids(arc1_training[:128], 30)
    out, _ = augment(padded.pixels, padded.sizes, torch.Generator().manual_seed(1))
    assert out.dtype == torch.uint8 and out.shape == padded.pixels.shape
    for before, after in zip(padded.pixels.numpy(), out.numpy()):
        h_before, h_after = _histogram(before), _histogram(after)
        assert h_after[0] == h_before[0]
        assert sorted(h_after[1:]) == sorted(h_before[1:])
    assert not torch.equal(out, padded.pixels)


def test_augmentation_is_deterministic_per_seed(arc1_training):
    padded = pad_grids(arc1_training[:64], 30)

    def batch(seed: int) -> torch.Tensor:
        return augment(
            padded.pixels, padded.sizes, batch_generator(seed, epoch=0, batch=1, device=CPU)
        )[0]

    assert torch.equal(batch(0), batch(0))
    assert not torch.equal(batch(0), batch(1))
    other_batch = augment(
        padded.pixels, padded.sizes, batch_generator(0, epoch=0, batch=2, device=CPU)
    )[0]
    assert not torch.equal(batch(0), other_batch)


def test_batch_generators_accept_every_valid_seed():
    # the mix of seed, epoch and batch must not overflow torch's seed
    for seed in (
        0,
        123_456_789,
        2**32 - 1,
    ):
        a = torch.rand(3, generator=batch_generator(seed, epoch=7, batch=9, device=CPU))
        assert torch.equal(
            a, torch.rand(3, generator=batch_generator(seed, epoch=7, batch=9, device=CPU))
        )


def test_epoch_indices_cover_every_grid_evenly():
    for n_grids, n_samples in [(10, 35), (7, 7), (100, 30), (3434, 80_000)]:
        idx = epoch_indices(n_grids, n_samples, torch.Generator().manual_seed(0), CPU)
        assert idx.shape == (n_samples,)
        counts = torch.bincount(idx, minlength=n_grids)
        assert counts.max() - counts.min() <= 1
        assert counts.sum() == n_samples
    a = epoch_indices(50, 120, torch.Generator().manual_seed(3), CPU)
    b = epoch_indices(50, 120, torch.Generator().manual_seed(3), CPU)
    c = epoch_indices(50, 120, torch.Generator().manual_seed(4), CPU)
    assert torch.equal(a, b) and not torch.equal(a, c)


# ---------------------------------------------------------------- canvases


def test_canvas_is_the_longest_side_rounded_up_to_the_multiple_and_capped():
    sizes = torch.tensor([[1, 1], [3, 7], [7, 3], [8, 8], [9, 2], [29, 30], [30, 1]])
    assert canvas_sizes(sizes, 4, 30).tolist() == [4, 8, 8, 8, 12, 30, 30]
    assert canvas_sizes(sizes, 1, 30).tolist() == [1, 7, 7, 8, 9, 30, 30]
    # a multiple above grid_size: one canvas
    assert canvas_sizes(sizes, 100, 30).tolist() == [30] * 7
    assert canvas_sizes(sizes[:4], 5, 8).tolist() == [5, 8, 8, 8]  # 10 capped at grid_size 8
    assert canvas_sizes(sizes, 4, 30).dtype == torch.int64


def test_arc1_bucket_mix_matches_the_design_figures(arc1):
    canvases = canvas_sizes(arc1.sizes, 4, 30)
    assert (canvases >= arc1.sizes.max(1).values).all()
    # docs/design.md: with canvases rounded up to a multiple of 4 the mean canvas is 20% of 30x30.
    assert (canvases.double() ** 2).mean().item() / 900 == pytest.approx(0.20, abs=0.01)


def test_a_grid_larger_than_grid_size_is_one_data_error_line():
    with pytest.raises(DataError) as info:
        canvas_sizes(torch.tensor([[3, 3], [12, 20]]), 4, 16)
    assert (
        "\n" not in str(info.value)
        and "data.grid_size=16" in str(info.value)
        and "20" in str(info.value)
    )
    with pytest.raises(DataError, match="bucket_multiple"):
        canvas_sizes(torch.tensor([[3, 3]]), 0, 16)


def test_canvases_of_follows_the_padding_mode(arc1):
    black = canvases_of(arc1.sizes, DataConfig(padding="black", grid_size=30))
    assert (black == 30).all() and len(black) == len(arc1)
    symbol = canvases_of(arc1.sizes, DataConfig(padding="symbol", bucket_multiple=4, grid_size=30))
    assert torch.equal(symbol, canvas_sizes(arc1.sizes, 4, 30))


# ---------------------------------------------------------------- the epoch plan


def _plan(grids: Grids, epoch: int, batch: int = 128, samples: int = 80_000, multiple: int = 4):
    gen = batch_generator(0, epoch, 0, CPU)
    order = epoch_indices(len(grids), samples, gen, CPU)
    order = order[: len(order) // batch * batch]
    return order, bucket_batches(order, canvas_sizes(grids.sizes, multiple, 30), batch, gen)


def test_the_plan_draws_todays_multiset_in_full_batches_each_grid_on_a_canvas_that_holds_it(arc1):
    canvases = canvas_sizes(arc1.sizes, 4, 30)
    order, plan = _plan(arc1, epoch=3)
    assert len(plan) == len(order) // 128
    assert all(len(idx) == 128 for _, idx in plan)
    drawn = torch.cat([idx for _, idx in plan])
    # the same multiset as without buckets
    assert torch.equal(drawn.sort().values, order.sort().values)
    for canvas, idx in plan:
        # the smallest canvas holding every grid of the batch
        assert canvas == canvases[idx].max().item()
    assert {c for c, _ in plan} <= set(canvases.unique().tolist())
    # Leftovers are carried up only: at most one batch per canvas mixes buckets.
    mixed = [c for c, idx in plan if canvases[idx].min() != c]
    assert len(mixed) == len(set(mixed)) <= canvases.unique().numel() - 1


def test_the_plan_is_deterministic_from_the_generator_and_shuffles_canvases(arc1):
    _, a = _plan(arc1, epoch=1)
    _, b = _plan(arc1, epoch=1)
    _, c = _plan(arc1, epoch=2)
    assert [cv for cv, _ in a] == [cv for cv, _ in b] and all(
        torch.equal(x, y) for (_, x), (_, y) in zip(a, b)
    )
    assert [cv for cv, _ in a] != [cv for cv, _ in c]
    canvases = [cv for cv, _ in a]
    assert canvases != sorted(canvases)  # batch order shuffled, not smallest first


def test_the_plan_keeps_each_grids_share_of_the_epoch(arc1):
    """Every grid is drawn as often as without buckets (whole passes: counts differ by at most
    one)."""
    order, plan = _plan(arc1, epoch=0, samples=3 * len(arc1), batch=64)
    counts = torch.bincount(torch.cat([idx for _, idx in plan]), minlength=len(arc1))
    assert torch.equal(counts, torch.bincount(order, minlength=len(arc1)))
    assert counts.max() - counts.min() <= 1


def test_a_small_bucket_is_carried_up_until_it_fills_a_batch():
    # 3 + 2 leftovers carried into the 12 bucket
    canvases = torch.tensor([4] * 3 + [8] * 2 + [12] * 7)
    plan = bucket_batches(torch.arange(12), canvases, 4, torch.Generator().manual_seed(0))
    by_canvas = sorted((c, sorted(idx.tolist())) for c, idx in plan)
    assert by_canvas == [(8, [0, 1, 2, 3]), (12, [4, 5, 6, 7]), (12, [8, 9, 10, 11])]


def test_a_plan_of_partial_batches_is_refused():
    with pytest.raises(ValueError, match="whole batches"):
        bucket_batches(torch.arange(10), torch.full((10,), 4), 4, torch.Generator())


def test_eval_batches_take_every_grid_once_grouped_by_canvas(arc1):
    canvases = canvas_sizes(arc1.sizes, 4, 30)
    batches = eval_batches(arc1, 100, canvases)
    drawn = torch.cat([idx for _, idx in batches])
    assert torch.equal(drawn.sort().values, torch.arange(len(arc1)))
    assert all(1 <= len(idx) <= 100 and (canvases[idx] == c).all() for c, idx in batches)
    assert [c for c, _ in batches] == sorted(c for c, _ in batches)
    per_canvas = torch.bincount(canvases)
    assert len(batches) == sum(math.ceil(n / 100) for n in per_canvas.tolist() if n)
    # black mode: one canvas, today's consecutive batches
    black = eval_batches(arc1, 1000, torch.full((len(arc1),), 30))
    assert [(c, idx.tolist()) for c, idx in black] == [
        (30, list(range(s, min(s + 1000, len(arc1))))) for s in range(0, len(arc1), 1000)
    ]


# ---------------------------------------------------------------- symbol-mode batches


def test_take_crops_the_stored_canvas_and_mark_outside_puts_pad_outside_each_grid(arc1):
    canvases = canvas_sizes(arc1.sizes, 4, 30)
    idx = (canvases == 12).nonzero().flatten()[:50]
    pixels, sizes = take(arc1, idx, 12)
    assert pixels.shape == (50, 12, 12) and pixels.dtype == torch.uint8
    marked = mark_outside(pixels, sizes)
    assert marked.dtype == torch.uint8
    for k, (i, (h, w)) in enumerate(zip(idx.tolist(), sizes.tolist())):
        assert torch.equal(marked[k, :h, :w], arc1.pixels[i, :h, :w])
        assert (marked[k, h:, :] == PAD).all() and (marked[k, :, w:] == PAD).all()
        assert int(inside(sizes[k : k + 1], 12).sum()) == h * w


@pytest.fixture(scope="module")
def ragged(arc1_training) -> list[np.ndarray]:
    """Real non-square grids whose 8 images are distinct, on several buckets."""
    chosen = [
        g
        for g in arc1_training
        if g.shape[0] != g.shape[1]
        and len({(_numpy_symmetry(g, s).shape, _numpy_symmetry(g, s).tobytes()) for s in range(8)})
        == 8
    ]
    return chosen[:96]


def test_augment_returns_each_grids_new_size_as_the_numpy_symmetry_gives_it(ragged):
    padded = pad_grids(ragged, 30)
    gen = batch_generator(5, 0, 1, CPU)
    out, sizes = augment(padded.pixels, padded.sizes, gen)
    # The same draws, in the same order, as augment makes: the symmetry, then the colour tables.
    gen = batch_generator(5, 0, 1, CPU)
    sym = torch.randint(0, 8, (len(ragged),), generator=gen).tolist()
    assert len(set(sym)) == 8
    perms = torch.rand(len(ragged), 9, generator=gen).argsort(1) + 1
    for g, o, (h, w), k, perm in zip(ragged, out.numpy(), sizes.tolist(), sym, perms.tolist()):
        table = np.array([0] + perm, dtype=np.uint8)
        ref = table[_numpy_symmetry(g, k)]
        assert (h, w) == ref.shape
        assert np.array_equal(o[:h, :w], ref)
        assert not o[h:].any() and not o[:, w:].any()


def test_augment_on_a_bucket_crop_equals_augment_on_the_full_canvas(arc1):
    """Symbol mode augments the (C, C) crop: the same draws give the same grids, and the bucket
    holds them."""
    canvases = canvas_sizes(arc1.sizes, 4, 30)
    idx = (canvases == 8).nonzero().flatten()[:64]
    small, sizes = take(arc1, idx, 8)
    full, full_sizes = augment(arc1.pixels[idx], arc1.sizes[idx], batch_generator(1, 2, 3, CPU))
    crop, crop_sizes = augment(small, sizes, batch_generator(1, 2, 3, CPU))
    assert torch.equal(crop_sizes, full_sizes) and torch.equal(crop, full[:, :8, :8])
    assert not full[:, 8:].any() and not full[:, :, 8:].any()
    assert torch.equal(canvas_sizes(crop_sizes, 4, 30), canvases[idx])  # the bucket never changes
