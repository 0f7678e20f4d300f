"""bench/step_times.py: configurations split on `vs`, one line each with samples/s and every
canvas's step."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT, TINY

sys.path.insert(0, str(ROOT / "bench"))
import step_times  # noqa: E402


@pytest.mark.slow
def test_each_configuration_gets_a_line_with_its_rate_and_the_canvases_of_its_plan(
    tmp_path, capsys
):
    cache = f"data.cache_dir={tmp_path / 'cache'}"
    step_times.main(
        [
            "--steps",
            "12",
            *TINY,
            cache,
            "train.batch_size=16",
            "vs",
            *TINY,
            cache,
            "train.batch_size=32",
        ]
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if "samples/s" in line]
    assert len(lines) == 2
    assert lines[0].split(": ")[0].endswith("train.batch_size=16") and lines[1].split(": ")[
        0
    ].endswith("train.batch_size=32")
    for line in lines:
        assert float(line.split(": ")[1].split(" samples/s")[0].replace(",", "")) > 0
        # the tiny plan's buckets (grids up to 10x10, multiple 4)
        assert "4x4" in line or "8x8" in line
