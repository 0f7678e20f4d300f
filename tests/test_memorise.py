"""bench/memorise.py: one line and one own-pixel accuracy per architecture asked for."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import memorise  # noqa: E402


@pytest.mark.slow
def test_each_architecture_gets_a_line_and_an_accuracy(capsys):
    accuracy = memorise.main(["--steps", "2", "conv_any", "patch"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["conv_any", "patch"]
    assert all("own-pixel accuracy after 2 steps:" in line for line in lines)
    assert set(accuracy) == {"conv_any", "patch"} and all(0 <= a <= 1 for a in accuracy.values())
