"""`python -m arcvae atoms`: write generated grids and their factors to an .npz file, or the
researchers' train/val/test layout (the generators are data/atoms.py and data/touching.py)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..data import atoms, touching
from ..data.grids import LAYOUT, split_seed
from ..errors import ArcVaeError
from ..files import write_atomic
from .parser import EXIT_OK, Parser, positive

STYLES = {"atoms": atoms, "touching": touching}  # --style -> its generator module


def split_counts(text: str) -> tuple[int, int, int]:
    """An argument type: N_TRAIN,N_VAL,N_TEST, three whole numbers >= 1."""
    parts = text.split(",")
    if len(parts) != len(LAYOUT) or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not N_TRAIN,N_VAL,N_TEST (three whole numbers >= 1)"
        )
    return tuple(int(part) for part in parts)


def atoms_main(argv: list[str]) -> int:
    p = Parser(
        prog="python -m arcvae atoms",
        description="Write N generated grids (atoms: 1-4 objects on black that never touch; "
        "touching: 1-6 objects that may touch, 8-connected) and their factors to an .npz file, "
        "or with --splits the researchers' train/val/test layout.",
    )
    p.add_argument("--n", type=positive, help="how many grids (or --splits)")
    p.add_argument(
        "--splits",
        type=split_counts,
        metavar="N_TRAIN,N_VAL,N_TEST",
        help="write only the arrays train, val and test (uint8, N x size x size), split i drawn "
        "with seed 3 * SEED + i (train 3*SEED, val 3*SEED+1, test 3*SEED+2), instead of --n "
        "grids with their factors",
    )
    p.add_argument("--style", choices=STYLES, default="atoms", help="the generator (default atoms)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    p.add_argument("--out", required=True, help="the .npz file to write")
    p.add_argument(
        "--size",
        type=int,
        default=16,
        help=f"canvas side, {atoms.MIN_SIZE}-{atoms.MAX_SIZE} (default 16, the researchers' grids)",
    )
    args = p.parse_args(argv)
    generator = STYLES[args.style]
    out = Path(args.out)
    if (args.n is None) == (args.splits is None):
        raise ArcVaeError("--n, --splits: give exactly one of them")
    if out.suffix != ".npz":
        raise ArcVaeError(f"--out {out}: the file must end in .npz")
    if not generator.MIN_SIZE <= args.size <= generator.MAX_SIZE:
        raise ArcVaeError(f"--size {args.size}: must be {generator.MIN_SIZE}-{generator.MAX_SIZE}")
    if not 0 <= args.seed < 2**32:
        raise ArcVaeError(f"--seed {args.seed}: must be 0..2^32-1")
    start = time.perf_counter()
    if args.splits is None:
        drawn = [generator.generate(args.n, args.seed, args.size)]
        arrays = drawn[0]
        what = f"{args.n} grids"
    else:
        drawn = [
            generator.generate(count, split_seed(args.seed, i), args.size)
            for i, count in enumerate(args.splits)
        ]
        # The layout holds the grids alone: no factors, no marker (module docstring of grids.py).
        arrays = {name: split["grids"] for name, split in zip(LAYOUT, drawn)}
        what = "/".join(map(str, args.splits)) + " " + "/".join(LAYOUT) + " grids"
    write_atomic(out, lambda f: np.savez_compressed(f, **arrays))
    grids = np.concatenate([split["grids"] for split in drawn])
    n_objects = np.concatenate([split["n_objects"] for split in drawn])
    print(
        f"wrote {what} of {args.size}x{args.size} ({args.style}) to {out} in "
        f"{time.perf_counter() - start:.1f} s: {n_objects.mean():.2f} objects a grid, "
        f"{(grids == 0).mean():.1%} black"
    )
    return EXIT_OK
