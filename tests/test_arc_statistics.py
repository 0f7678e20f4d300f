"""Do samples look like ARC grids (issue 26): the statistics `sample` reports, pinned on hand-made
grids and on real ARC."""

from __future__ import annotations

import numpy as np
import pytest

from arcvae.data.arc_statistics import ARC_BINS, arc_statistics, compare_arc, is_symmetric
from arcvae.data.grids import load_arc_grids


def test_statistics_of_hand_made_grids():
    plain = np.zeros((3, 3), dtype=np.uint8)  # all black, symmetric
    corner = np.zeros((4, 6), dtype=np.uint8)
    corner[0, :3] = 2  # a 3-pixel line
    corner[3, 5] = 7  # one pixel
    stats = arc_statistics([plain, corner])
    assert stats["black"]["90%"] == 0.5 and stats["black"]["80%"] == 0.5  # 20/24 black
    assert stats["colours"]["1"] == 0.5 and stats["colours"]["3"] == 0.5
    assert stats["component"]["1"] == 0.5 and stats["component"]["3-4"] == 0.5
    assert stats["side"]["1-5"] == 0.5 and stats["side"]["6-10"] == 0.5
    assert stats["symmetric"] == {"no": 0.5, "yes": 0.5}
    assert all(list(stats[name]) == labels for name, labels in ARC_BINS.items())


def test_symmetries():
    grid = np.array([[1, 2], [3, 4]])
    assert not is_symmetric(grid)
    assert is_symmetric(np.array([[1, 2, 1]]))  # left-right
    assert is_symmetric(np.array([[1, 2], [2, 5]]))  # its transpose
    assert is_symmetric(np.array([[1, 2], [2, 1]]))  # half turn
    assert not is_symmetric(np.array([[1, 2, 3], [2, 5, 6]]))  # a transpose needs a square


def test_real_arc_beside_itself_and_beside_noise():
    arc = load_arc_grids("arc1", "evaluation")
    same = compare_arc(arc, arc, "itself")
    assert same["mean_total_variation"] == 0 and set(same["total_variation"]) == set(ARC_BINS)
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 10, g.shape).astype(np.uint8) for g in arc[:300]]
    far = compare_arc(noise, arc, "ARC-AGI-1 evaluation")
    # uniform noise: a tenth black, nearly every colour in each grid, components of 1-2 pixels
    assert far["total_variation"]["black"] > 0.6 and far["total_variation"]["colours"] > 0.6
    assert far["samples"]["component"]["1"] > 0.7
    assert far["mean_total_variation"] == pytest.approx(
        np.mean(list(far["total_variation"].values()))
    )
