"""`python -m arcvae apply RUN --grid GRID --chain CHAIN`: a chain of operations applied to one
object of a grid in a slot model's latent (latent/slot_operations.py, docs/latent.md), decoded
beside the chain applied to the grid itself."""

from __future__ import annotations

import numpy as np
import torch

from ..data.grids import named_grids
from ..errors import ArcVaeError
from ..files import write_json_atomic
from ..latent.shape_maps import load_shape_maps
from ..latent.slot_code import require_slot_model
from ..latent.slot_operations import (
    SYNTAX,
    CannotApply,
    apply_chain,
    apply_to_grid,
    chain_text,
    parse_chain,
)
from ..models.slots import components
from ..pictures.grids import save_grid_table
from .latent_commands import SOURCE_HELP, out_dir, parse_and_load, run_parser, written_by
from .parser import EXIT_OK


def apply_main(argv: list[str]) -> int:
    p = run_parser(
        "apply",
        "Apply a chain of operations to one object of a grid in a slot model's latent, decode it, "
        "and compare it with the chain applied to the grid itself.",
    )
    p.add_argument("--grid", required=True, help=SOURCE_HELP + ", or a numpy file")
    p.add_argument("--index", type=int, default=0, help="which of its grids (default 0: the first)")
    p.add_argument(
        "--object",
        type=int,
        default=0,
        help="which object, in reading order of its first pixel (default 0: the first)",
    )
    p.add_argument("--chain", required=True, help=f"operations joined by +: {SYNTAX}")
    args, run = parse_and_load(p, argv)
    chain = parse_chain(args.chain)
    require_slot_model(run, "apply")
    found = named_grids(args.grid)
    if not 0 <= args.index < len(found):
        raise ArcVaeError(f"--index {args.index}: {args.grid} holds {len(found)} grids")
    named = found[args.index]
    grid = run.grids([named.grid], [named.label]).pixels[0].numpy()
    parse = components(torch.from_numpy(grid)[None].long(), run.net.slots, run.net.connectivity)
    count = int(parse["present"].sum())
    if not 0 <= args.object < count:
        raise ArcVaeError(f"--object {args.object}: {named.label} holds {count} objects (0-based)")
    maps = load_shape_maps(run)
    mu = torch.from_numpy(run.encode([grid], [named.label])[0])
    z, problems = apply_chain(run.net, maps, mu, torch.tensor([args.object]), chain, run.canvas)
    if problems[0] is not None:
        raise CannotApply(f"{named.label}, object {args.object}: {problems[0]}")
    decoded = run.decode(z)[0]
    try:
        wanted, _ = apply_to_grid(
            grid,
            parse["masks"][0, args.object].numpy(),
            chain,
            run.net.connectivity,
            maps.largest_pixels,
        )
    except CannotApply as refused:  # the code allowed what the grid does not
        wanted, verdict = None, f"not on the grid itself ({refused})"
    else:
        verdict = "exact" if np.array_equal(decoded, wanted) else "not exact"
    out = out_dir(args)
    shown = [grid, decoded] + ([] if wanted is None else [wanted])
    save_grid_table(
        out / "apply.png",
        [shown],
        f"object {args.object}: {chain_text(chain)} (step {run.step})",
        col_labels=["x", "decode(op(μ(x)))", "op(x)"][: len(shown)],
    )
    write_json_atomic(
        out / "apply.json",
        {
            **written_by(run),
            "grid": named.label,
            "object": args.object,
            "chain": chain_text(chain),
            "input": grid.tolist(),
            "decoded": decoded.tolist(),
            "wanted": None if wanted is None else wanted.tolist(),
            "verdict": verdict,
        },
    )
    print(f"{chain_text(chain)} on object {args.object} of {named.label}: {verdict}")
    print(f"wrote {out / 'apply.png'} and {out / 'apply.json'}")
    return EXIT_OK
