"""Is a run's latent structured? `python -m arcvae structure RUN` scores it against the factors that
made its held-out grids (disentanglement.py: MIG, DCI), applies object operations as latent vectors
(operations.py), finds the dimension that moves each factor alone, and draws the latent map
(latent_maps.py); `python -m arcvae map RUN` draws the map of any run (docs/latent.md).

The factors are those `python -m arcvae atoms` writes (atoms.FACTOR_NAMES): of object 0 and the
number of objects. Kind, colour, pixel count, row and column are scored on the held-out grids that
hold one object, where they are the grid's factors; the number of objects on all of them.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ArcVaeError
from ..files import write_json_atomic
from ..latent import inference
from ..latent.disentanglement import dci, mig
from ..latent.maps import (
    MAX_POINTS,
    METHODS,
    MIN_POINTS,
    SCORED,
    factor_colourings,
    factor_columns,
    grid_colourings,
    grid_factors,
)
from ..latent.operations import OPERATIONS, score_operation, traversal_scores
from ..latent.shape_maps import load_shape_maps
from ..latent.slot_code import is_slot_model
from ..latent.slot_matching import match_slots, slot_disentanglement
from ..latent.slot_matching import report_lines as matching_lines
from ..latent.slot_scores import score_operations
from ..latent.trained_run import reference_grids
from ..pictures.grids import save_grid_table
from ..pictures.maps import save_maps
from .compare import table
from .latent_commands import out_dir, parse_and_load, percent, run_parser, written_by
from .parser import EXIT_OK, positive

OPERATION_GRIDS = 1000  # one-object grids an operation is tried on (recolour: 8 pairs each)
TRAVERSED_GRIDS = 200
TRAVERSED_DIMS = 32  # of the highest KL, when the latent has more


def structure_main(argv: list[str]) -> int:
    p = run_parser(
        "structure",
        "Score a run's latent against the factors of its held-out grids (MIG, DCI), apply object "
        "operations as latent vectors, and draw the latent map.",
    )
    p.add_argument("--limit", type=positive, help="use the first N held-out grids only")
    p.add_argument(
        "--no-tsne", action="store_true", help="draw the maps by PCA only (t-SNE takes seconds)"
    )
    args, run = parse_and_load(p, argv)
    grids, which = reference_grids(run)
    if args.limit:
        grids = grids.select(np.arange(min(args.limit, len(grids))))
    if is_slot_model(run.net) and grid_factors(grids) is None:
        return slots_alone(args, run, grids, which)
    factors = factor_columns(grids, args.run)
    single = np.flatnonzero(factors["n_objects"] == 1)
    if len(single) < 10:
        raise ArcVaeError(
            f"{args.run}: {len(single)} of its {which} grids hold one object; need 10"
        )
    mu, logvar = run.encode_set(grids)  # (N, D) each
    one = {name: factors[name][single] for name in SCORED}
    codes = mu[single]
    scored = np.stack([one[name] for name in SCORED], axis=1)
    mig_one, dci_one = mig(codes, scored), dci(codes, scored)
    mig_count = mig(mu, factors["n_objects"][:, None])
    count_accuracy = dci(mu, factors["n_objects"][:, None])["informativeness"]

    one_grids = grids.select(single).unpadded()

    def encode_list(listed: list[np.ndarray]) -> np.ndarray:
        return run.encode(listed)[0]

    operations, examples = {}, {}
    for name, operation in OPERATIONS.items():
        operations[name], examples[name] = score_operation(
            encode_list, run.decode, one_grids[:OPERATION_GRIDS], operation
        )
    kl = inference.kl_over_reached(
        torch.from_numpy(mu),
        torch.from_numpy(logvar),
        inference.reached_by(run.net, grids, run.config),
    )
    dims = np.sort(np.argsort(-kl, kind="stable")[:TRAVERSED_DIMS])
    traversals = traversal_scores(run.decode, codes[:TRAVERSED_GRIDS], dims.tolist())

    out = out_dir(args)
    methods = ("pca",) if args.no_tsne else METHODS
    title = f"{args.run} (step {run.step}): μ of {{}} {which} grids"
    maps = save_maps(
        out,
        codes,
        factor_colourings(one, SCORED),
        title.format(f"{min(len(single), MAX_POINTS)} one-object"),
        methods,
    )
    maps += save_maps(
        out,
        mu,
        factor_colourings(factors, ("n_objects",)),
        title.format(min(len(mu), MAX_POINTS)),
        methods,
    )
    save_grid_table(
        out / "operations.png",
        [[grid for triple in examples[name] for grid in triple] for name in OPERATIONS],
        f"{args.run} (step {run.step}): held-out one-object grids x, op(x), and decode(μ(x) + Δ)",
        list(OPERATIONS),
        ["x", "op(x)", "+Δ"] * max(len(e) for e in examples.values()),
    )
    result = {
        **written_by(run),
        "grids": {"all": len(grids), "one_object": len(single), "of": which},
        "factors": list(SCORED),
        "mig": {**mig_one, "on": f"{len(single)} {which} grids with one object"},
        "dci": {**dci_one, "on": f"{len(single)} {which} grids with one object"},
        "n_objects": {
            "mig": mig_count["score"],
            "informativeness": count_accuracy,
            "on": f"all {len(grids)} {which} grids",
        },
        "operations": operations,
        "traversals": traversals,
        "kl_per_dim": kl.tolist(),
        "maps": [str(path) for path in maps],
    }
    lines = report(result)
    if is_slot_model(run.net):
        result["slots"] = slot_structure(run, grids, mu, out, args.run)
        lines += slot_report(result["slots"])
    write_json_atomic(out / "structure.json", result)
    print("\n".join(lines))
    print(f"wrote {out / 'structure.json'}, operations.png and {len(maps)} latent maps")
    return EXIT_OK


def slots_alone(args, run, grids, which: str) -> int:
    """`structure` of a slot run whose grids carry no factors (the researchers' own files): the
    operations on its code, which need none."""
    mu = run.encode_set(grids)[0]
    out = out_dir(args)
    result = {
        **written_by(run),
        "grids": {"all": len(grids), "of": which},
        "slots": slot_structure(run, grids, mu, out, args.run),
    }
    write_json_atomic(out / "structure.json", result)
    print(f"{args.run}: its {which} grids carry no factors; the operations on its slot code alone")
    print("\n".join(slot_report(result["slots"])))
    print(f"wrote {out / 'structure.json'} and slot_operations.png")
    return EXIT_OK


def slot_structure(run, grids, mu: np.ndarray, out, where: str) -> dict:
    """A slot model's own scores: its operations on the code (slot_scores.py, with a picture) and,
    where the grids carry each object's factors, MIG and DCI with slots matched to the objects they
    code (slot_matching.py)."""
    maps = load_shape_maps(run)
    pixels = grids.pixels.numpy()

    def encode(listed: list[np.ndarray]) -> np.ndarray:
        return run.encode(listed)[0]

    scores, examples = score_operations(
        run.net, maps, pixels, torch.from_numpy(mu), run.decode, encode
    )
    shown = [name for name in scores if examples[name]]
    save_grid_table(
        out / "slot_operations.png",
        [[grid for triple in examples[name] for grid in triple] for name in shown],
        f"{where} (step {run.step}): held-out x, op(x), and decode(op(μ(x))) on one object",
        shown,
        ["x", "op(x)", "op on μ"] * 3,
    )
    if grid_factors(grids) is None:
        return {"operations": scores}
    matched = match_slots(run.net, grids, mu, where)
    return {"operations": scores, "matched": slot_disentanglement(matched)}


SLOT_COLUMNS = ("exact", "refused", "reconstruction", "target", "exact_where_reconstructed")


def slot_report(slots: dict) -> list[str]:
    """The slot model's operations table and its slot-matched MIG and DCI, for the console."""
    rows = []
    for name, s in slots["operations"].items():
        if not s["grids"]:
            rows.append([name, f"0 of {s['of']}", *("-" for _ in SLOT_COLUMNS)])
            continue
        rows.append(
            [name, f"{s['grids']} of {s['of']}", *(percent(s[key]) for key in SLOT_COLUMNS)]
        )
    return [
        "operations on the slot code, one object of each held-out grid it applies to, share of "
        "grids decoded exactly to op(x):",
        table(rows, ["operation", "grids", *SLOT_COLUMNS]),
        *(matching_lines(slots["matched"]) if "matched" in slots else []),
    ]


def report(result: dict) -> list[str]:
    """structure.json as the console shows it: the scores, then a table of the operations."""
    m, d, count = result["mig"], result["dci"], result["n_objects"]
    per_factor = "  ".join(
        f"{name} {gap:.2f} (dim {dim})" if gap is not None else f"{name} -"
        for name, gap, dim in zip(result["factors"], m["per_factor"], m["best_dim"])
    )
    best = result["traversals"]["best"]
    return [
        f"on {m['on']}:",
        f"  MIG {m['score']:.3f}: {per_factor}",
        f"  DCI disentanglement {d['disentanglement']:.3f}  completeness {d['completeness']:.3f}  "
        f"informativeness {d['informativeness']:.3f} (accuracy on held-out codes)",
        f"on {count['on']}: n_objects MIG {count['mig']:.3f}, informativeness "
        f"{count['informativeness']:.3f}",
        "traversal changing only one factor, best dimension: "
        + "  ".join(
            f"{name} dim {v['dim']} ({v['changes_it_alone']:.0%})" for name, v in best.items()
        ),
        "operations, share of held-out pairs decoded exactly to op(x):",
        table(
            [
                [name, str(s["pairs"]), *(f"{s[key]:.1%}" for key in OPERATION_COLUMNS)]
                if s["pairs"]
                else [name, "0", *("-" for _ in OPERATION_COLUMNS)]
                for name, s in result["operations"].items()
            ],
            ["operation", "pairs", *OPERATION_COLUMNS],
        ),
    ]


OPERATION_COLUMNS = ("vector", "unchanged", "copy", "target")


# ---------------------------------------------------------------- map


def map_main(argv: list[str]) -> int:
    p = run_parser(
        "map",
        "Draw the latent map of a run's held-out grids (PCA and t-SNE of μ), coloured by their "
        "factors (atoms grids), else by grid size and task.",
    )
    p.add_argument(
        "--limit",
        type=positive,
        help=f"show the first N held-out grids (default and at most {MAX_POINTS})",
    )
    p.add_argument("--no-tsne", action="store_true", help="PCA only")
    args, run = parse_and_load(p, argv)
    grids, which = reference_grids(run)
    # the grids a map shows, before they are coloured: the tasks with most grids among them
    grids = grids.select(np.arange(min(args.limit or MAX_POINTS, MAX_POINTS, len(grids))))
    if len(grids) < MIN_POINTS:
        raise ArcVaeError(
            f"{args.run}: a map needs {MIN_POINTS} grids, its {which} set has {len(grids)}"
        )
    mu = run.encode_set(grids)[0]
    maps = save_maps(
        out_dir(args),
        mu,
        grid_colourings(grids),
        f"{args.run} (step {run.step}): μ of {len(mu)} {which} grids",
        ("pca",) if args.no_tsne else METHODS,
    )
    print(f"drew {len(maps)} latent maps of {which} grids: " + ", ".join(map(str, maps)))
    return EXIT_OK
