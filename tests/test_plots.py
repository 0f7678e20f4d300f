"""Plots: save_curves draws every panel of CURVE_PANELS from a real metrics.jsonl, alarm or none;
tables of grids."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from conftest import assert_picture

from arcvae.config import MonitorConfig
from arcvae.pictures import curves as plots
from arcvae.pictures.grids import save_grid_table
from arcvae.training.loggers import open_log
from arcvae.training.records import read_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(path) -> tuple[int, int]:
    """(width, height) in pixels, from the PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])


def _record(split: str, epoch: float, dead: bool = False) -> dict:
    kl = [0.001, 0.002, 0.001] if dead else [0.5, 1.0, 2.0]
    return {
        "split": split,
        "step": int(epoch * 8),
        "epoch": epoch,
        "beta": 0.1 * epoch,
        "lr": 1e-3,
        "loss": 10 - epoch,
        "recon": 9 - epoch,
        "kl": sum(kl),
        "kl_clamped": sum(kl),
        "kl_per_dim": kl,
        "kl_dim_min": min(kl),
        "kl_dim_mean": sum(kl) / 3,
        "kl_dim_max": max(kl),
        "active_units": 3,
        "pixel_accuracy": 0.9,
        "non_black_accuracy": 0.5,
        "grid_accuracy": 0.1,
        "per_class_accuracy": [0.99, 0.5, None, 0.25, 0.6, 0.7, 0.1, 0.2, 0.3, 0.4],
    }


def _write_run(run_dir, splits: tuple[str, ...]) -> None:
    log = open_log(run_dir)
    for epoch in (0.5, 1.0, 1.5, 2.0, 3.0):
        log.log(_record("train", epoch))
        if epoch == int(epoch) and "val" in splits:
            log.log(_record("val", epoch, dead=epoch == 3.0))
    log.close()


@pytest.mark.parametrize(
    "n_panels", [1, 3, 4, len(plots.CURVE_PANELS), len(plots.CURVE_PANELS) + 2]
)
def test_save_curves_lays_out_an_axis_for_every_panel(tmp_path, monkeypatch, n_panels):
    panels = (plots.CURVE_PANELS * 2)[:n_panels]
    monkeypatch.setattr(plots, "CURVE_PANELS", panels)
    _write_run(tmp_path, ("train", "val"))
    plots.save_curves(tmp_path, read_metrics(tmp_path), MonitorConfig(), start=2.0)
    width, height = _png_size(tmp_path / "plots" / "curves.png")
    rows = -(-n_panels // 3)
    # figsize (13, 3.25 a row) at 80 dpi
    assert width == 13 * 80 and height == pytest.approx(3.25 * rows * 80, abs=1)
    for name in ("kl_heatmap.png", "per_class_accuracy.png"):
        assert_picture(tmp_path / "plots" / name)


def test_save_curves_of_a_run_without_evaluations_uses_the_train_records(tmp_path):
    _write_run(tmp_path, ("train",))
    plots.save_curves(tmp_path, read_metrics(tmp_path), MonitorConfig(), start=2.0)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "curves.png",
        "kl_heatmap.png",
        "per_class_accuracy.png",
    ]


def test_save_curves_of_an_empty_run_writes_nothing(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    plots.save_curves(tmp_path, read_metrics(tmp_path), MonitorConfig(), start=1.0)
    assert not (tmp_path / "plots").exists()


def test_save_grid_table_grows_with_its_rows_and_columns(tmp_path):
    grids = [np.full((h, w), h % 10, dtype=np.uint8) for h, w in ((1, 1), (3, 5), (10, 2))]
    save_grid_table(tmp_path / "one.png", [grids], "a row", ["dim 0"], ["a", "b", "c"])
    save_grid_table(
        tmp_path / "four.png", [grids, grids[:1], grids, grids[:2]], "rows of any length"
    )
    save_grid_table(tmp_path / "wide.png", [grids * 3])
    one, four, wide = (_png_size(tmp_path / f"{name}.png") for name in ("one", "four", "wide"))
    assert four[1] > 3 * one[1] and four[0] == one[0]
    assert wide[0] > 2 * one[0] and wide[1] == one[1]
