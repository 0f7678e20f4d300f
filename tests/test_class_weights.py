"""Global class weights: normalisation, each method's ordering, the cap, the permutation rule, the
cache."""

from __future__ import annotations

import json

import pytest
import torch

from arcvae.data.grids import Grids, load_arc_grids, pad_grids
from arcvae.training.class_weights import (
    class_weights,
    compute_weights,
    expected_counts,
    pixel_counts,
)

METHODS = ("inverse", "inverse_sqrt", "effective_number")


@pytest.fixture(scope="module")
def arc_grids() -> Grids:
    """The real ARC-AGI-1 training grids, padded to 30x30 as training sees them."""
    return pad_grids(load_arc_grids("arc1", "training"), 30)


@pytest.fixture(scope="module")
def arc_counts(arc_grids) -> torch.Tensor:
    return pixel_counts(arc_grids)


def weights_for(
    grids: Grids, cache_dir, method="inverse_sqrt", permute=True, beta=0.9999, ratio=0.0, **kw
):
    return class_weights(grids, "arc1", permute, method, beta, ratio, cache_dir, **kw)


def test_padded_counts_are_the_designs_figures(arc_grids, arc_counts):
    assert len(arc_grids) == 3434
    # docs/design.md: 94.1% black padded
    assert arc_counts[0] / arc_counts.sum() == pytest.approx(0.941, abs=5e-4)
    assert arc_counts[1:].tolist() == [33407, 27231, 29125, 22398, 21066, 9731, 6325, 28826, 5369]


@pytest.mark.parametrize("method", METHODS + ("none",))
@pytest.mark.parametrize("permute", [False, True])
def test_pixel_weighted_mean_weight_is_one(arc_counts, method, permute):
    counts = expected_counts(arc_counts, permute)
    weights = compute_weights(counts, method)
    assert (counts / counts.sum() * weights).sum().item() == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_rarer_colours_weigh_more(arc_counts, method):
    weights = compute_weights(arc_counts.double(), method)
    by_count = torch.argsort(arc_counts)  # rarest first: all ten ARC counts differ
    assert (weights[by_count].diff() < 0).all(), weights


def test_inverse_is_the_square_of_inverse_sqrt(arc_counts):
    inverse, root = (
        compute_weights(arc_counts, "inverse"),
        compute_weights(arc_counts, "inverse_sqrt"),
    )
    assert inverse.max() / inverse.min() == pytest.approx((root.max() / root.min()) ** 2)


def test_effective_number_flattens_as_beta_shrinks(arc_counts):
    """Cui et al.: β -> 0 gives equal weights, β -> 1 approaches inverse frequency."""

    def ratio(beta: float) -> float:
        w = compute_weights(arc_counts, "effective_number", effective_beta=beta)
        return (w.max() / w.min()).item()

    assert ratio(0.5) == pytest.approx(1.0)
    assert (
        ratio(0.999)
        < ratio(0.9999)
        < ratio(0.999999)
        < (arc_counts.max() / arc_counts.min()).item()
    )


@pytest.mark.parametrize("method", METHODS)
def test_max_weight_ratio_caps_the_spread_and_keeps_the_mean(arc_counts, method):
    uncapped = compute_weights(arc_counts, method)
    capped = compute_weights(arc_counts, method, max_ratio=2.0)
    assert (uncapped.max() / uncapped.min()).item() > 2.0  # so the cap has work to do
    assert (capped.max() / capped.min()).item() == pytest.approx(2.0)
    assert (arc_counts / arc_counts.sum() * capped).sum().item() == pytest.approx(1.0)
    assert torch.argmax(capped) == torch.argmax(uncapped)  # the rarest colour stays the heaviest


def test_a_cap_above_the_spread_changes_nothing(arc_counts):
    torch.testing.assert_close(
        compute_weights(arc_counts, "inverse_sqrt", max_ratio=1e6),
        compute_weights(arc_counts, "inverse_sqrt"),
    )


@pytest.mark.parametrize("method", METHODS)
def test_absent_colours_get_the_largest_present_weight(arc_counts, method):
    counts = arc_counts.clone()
    counts[[7, 9]] = 0
    weights = compute_weights(counts, method)
    assert torch.isfinite(weights).all()
    present = torch.tensor([c not in (7, 9) for c in range(10)])
    assert weights[7] == weights[9] == weights[present].max()
    assert (counts / counts.sum() * weights).sum().item() == pytest.approx(1.0)


def permute_colours(grids: Grids, perm: list[int]) -> Grids:
    """The same grids with colour c painted perm[c] (black kept black)."""
    table = torch.tensor(perm, dtype=torch.uint8)
    return Grids(table[grids.pixels.long()], grids.sizes)


def test_expected_counts_make_weights_blind_to_a_colour_permutation(arc_grids, tmp_path):
    """Augmentation permutes colours 1-9 uniformly, so what counts is their mean, not which is
    which."""
    perm = [0, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    shuffled = permute_colours(arc_grids, perm)
    a = weights_for(arc_grids, None, permute=True)
    b = weights_for(shuffled, None, permute=True)
    assert a.weights == b.weights
    # every non-black colour is equally common after augmentation
    assert len(set(a.weights[1:])) == 1
    assert a.weights[0] < a.weights[1]
    assert b.raw_counts == [a.raw_counts[perm.index(c)] for c in range(10)]
    # Without augmentation the raw counts decide, so the permutation moves the weights with the
    # colours.
    c, d = weights_for(arc_grids, None, permute=False), weights_for(shuffled, None, permute=False)
    assert c.weights != d.weights
    assert d.weights == [c.weights[perm.index(k)] for k in range(10)]


def test_expected_counts_keep_black_and_the_total(arc_counts):
    counts = expected_counts(arc_counts, True)
    assert counts[0] == arc_counts[0]
    assert counts.sum().item() == pytest.approx(arc_counts.sum().item())
    torch.testing.assert_close(expected_counts(arc_counts, False), arc_counts.double())


# ---------------------------------------------------------------- the cache


def cache_files(cache_dir) -> list:
    return sorted(p.name for p in cache_dir.iterdir()) if cache_dir.exists() else []


def test_second_call_is_a_cache_hit_with_equal_weights(arc_grids, tmp_path):
    first = weights_for(arc_grids, tmp_path)
    second = weights_for(arc_grids, tmp_path)
    assert (first.source, second.source) == ("computed", "cache")
    assert (second.weights, second.counts, second.raw_counts) == (
        first.weights,
        first.counts,
        first.raw_counts,
    )
    assert second.fingerprint == first.fingerprint
    entry = json.loads((tmp_path / f"class_weights_{first.fingerprint}.json").read_text())
    # human-readable JSON
    assert entry["method"] == "inverse_sqrt" and entry["weights"] == first.weights


@pytest.mark.parametrize(
    "change", ["data", "source", "method", "effective_beta", "max_ratio", "permute"]
)
def test_a_changed_input_misses_the_cache(arc_grids, tmp_path, change):
    first = weights_for(arc_grids, tmp_path, method="effective_number")
    grids = arc_grids
    kwargs = dict(method="effective_number")
    if change == "data":  # one pixel of one grid
        pixels = arc_grids.pixels.clone()
        pixels[0, 0, 0] = (pixels[0, 0, 0] + 1) % 10
        grids = Grids(pixels, arc_grids.sizes)
    elif change == "source":
        again = class_weights(
            grids, "my_copy_of_arc1", True, "effective_number", 0.9999, 0.0, tmp_path
        )
        assert again.source == "computed" and again.fingerprint != first.fingerprint
        return
    elif change == "method":
        kwargs["method"] = "inverse"
    elif change == "effective_beta":
        kwargs["beta"] = 0.999
    elif change == "max_ratio":
        kwargs["ratio"] = 5.0
    else:
        kwargs["permute"] = False
    again = weights_for(grids, tmp_path, **kwargs)
    assert again.source == "computed"
    assert again.fingerprint != first.fingerprint
    assert len(cache_files(tmp_path)) == 2


@pytest.mark.parametrize(
    "damage",
    [
        "garbage",
        "truncated",
        "empty",
        "wrong_shape",
        "negative_weight",
        "infinite_weight",
        "other_key",
    ],
)
def test_a_damaged_cache_file_is_recomputed_with_a_warning_and_rewritten(
    arc_grids, tmp_path, capsys, damage
):
    first = weights_for(arc_grids, tmp_path)
    path = tmp_path / f"class_weights_{first.fingerprint}.json"
    text = path.read_text()
    entry = json.loads(text)
    damaged = {
        "garbage": "not json at all {{{",
        "truncated": text[: len(text) // 2],
        "empty": "",
        "wrong_shape": json.dumps({**entry, "weights": entry["weights"][:9]}),
        "negative_weight": json.dumps({**entry, "weights": [-1.0] + entry["weights"][1:]}),
        # "Infinity"
        "infinite_weight": json.dumps({**entry, "weights": [float("inf")] + entry["weights"][1:]}),
        "other_key": json.dumps({**entry, "fingerprint": "0" * 20}),
    }[damage]
    path.write_text(damaged)
    capsys.readouterr()
    again = weights_for(arc_grids, tmp_path)
    assert "warning" in capsys.readouterr().out
    assert again.source == "computed" and again.weights == first.weights
    assert json.loads(path.read_text()) == entry  # rewritten valid
    assert weights_for(arc_grids, tmp_path).source == "cache"


def test_recompute_ignores_a_valid_cache(arc_grids, tmp_path):
    weights_for(arc_grids, tmp_path)
    assert weights_for(arc_grids, tmp_path, recompute=True).source == "computed"


def test_the_write_is_atomic_and_leaves_no_temp_files(arc_grids, tmp_path):
    cache = tmp_path / "nested" / "cache"  # created on demand
    for method in METHODS:
        weights_for(arc_grids, cache, method=method)
    names = cache_files(cache)
    assert len(names) == 3 and all(
        n.startswith("class_weights_") and n.endswith(".json") for n in names
    )


def test_no_cache_dir_writes_nothing(arc_grids, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # so a stray write to ~/.cache would show
    result = weights_for(arc_grids, None)
    assert result.source == "computed"
    assert list(tmp_path.rglob("*")) == []
