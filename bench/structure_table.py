"""What β buys in structure (issue 27): one row per run, from the files the commands wrote into it.

    python -m arcvae sweep configs/results/beta/*.yaml --base configs/atoms.yaml \\
        --out runs/atoms-beta
    for run in runs/atoms-beta/*/; do
        python -m arcvae structure $run && python -m arcvae sample $run --n 1000
    done
    python bench/structure_table.py runs/atoms-beta/*/

Each run's summary.json (the last validation record), latent/structure.json and
latent/samples.json; a figure a run lacks is '-'. Prints a Markdown table. "move right" is the
share of held-out pairs decoded exactly by the operation's vector, "unchanged" by decode(μ(x)),
"op(x) rebuilt" by decode(μ(op(x))): the most the vector can reach. "valid" is the share of prior
samples that follow the atoms rules (atoms runs), "samples' TV" the mean total variation between
the samples' statistics and the held-out grids' (ARC runs; arc_statistics.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = (
    "run",
    "β",
    "pixel",
    "non-black",
    "exact",
    "rate (bits)",
    "KL/dim min",
    "MIG",
    "DCI D",
    "DCI C",
    "DCI I",
    "move right",
    "unchanged",
    "op(x) rebuilt",
    "recolour",
    "valid",
    "samples' TV",
)


def read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def percent(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def number(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def row(run: Path) -> list[str]:
    final = read(run / "summary.json").get("final", {})
    structure = read(run / "latent" / "structure.json")
    samples = read(run / "latent" / "samples.json")
    operations = structure.get("operations", {})
    moved = operations.get("move_right", {})
    dci = structure.get("dci", {})
    return [
        run.name,
        number(final.get("beta"), 2),
        percent(final.get("pixel_accuracy")),
        percent(final.get("non_black_accuracy")),
        percent(final.get("grid_accuracy")),
        number(final.get("rate_bits"), 1),
        number(final.get("kl_dim_min"), 2),
        number(structure.get("mig", {}).get("score"), 3),
        number(dci.get("disentanglement"), 3),
        number(dci.get("completeness"), 3),
        number(dci.get("informativeness"), 3),
        percent(moved.get("vector")),
        percent(moved.get("unchanged")),
        percent(moved.get("target")),
        percent(operations.get("recolour", {}).get("vector")),
        percent(samples.get("valid_share")),
        number(samples.get("mean_total_variation"), 3),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders")
    args = p.parse_args()
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for run in args.runs:
        print("| " + " | ".join(row(run)) + " |")


if __name__ == "__main__":
    main()
