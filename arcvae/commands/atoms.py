"""`python -m arcvae atoms`: write generated grids and their factors to an .npz file
(the generator is data/atoms.py)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..data.atoms import MAX_SIZE, MIN_SIZE, generate
from ..errors import ArcVaeError
from ..files import write_atomic
from .parser import EXIT_OK, Parser, positive


def atoms_main(argv: list[str]) -> int:
    p = Parser(
        prog="python -m arcvae atoms",
        description="Write N atoms grids (1-4 objects on black) and their factors to an .npz file.",
    )
    p.add_argument("--n", type=positive, required=True, help="how many grids")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    p.add_argument("--out", required=True, help="the .npz file to write")
    p.add_argument(
        "--size",
        type=int,
        default=16,
        help=f"canvas side, {MIN_SIZE}-{MAX_SIZE} (default 16, the researchers' grids)",
    )
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.suffix != ".npz":
        raise ArcVaeError(f"--out {out}: the file must end in .npz")
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        raise ArcVaeError(f"--size {args.size}: must be {MIN_SIZE}-{MAX_SIZE}")
    if not 0 <= args.seed < 2**32:
        raise ArcVaeError(f"--seed {args.seed}: must be 0..2^32-1")
    start = time.perf_counter()
    arrays = generate(args.n, args.seed, args.size)
    write_atomic(out, lambda f: np.savez_compressed(f, **arrays))
    black = (arrays["grids"] == 0).mean()
    print(
        f"wrote {args.n} grids of {args.size}x{args.size} to {out} in "
        f"{time.perf_counter() - start:.1f} s: {arrays['n_objects'].mean():.2f} objects a grid, "
        f"{black:.1%} black"
    )
    return EXIT_OK
