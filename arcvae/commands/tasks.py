"""`python -m arcvae tasks RUN --ops translate,recolour --depth 2 --pairs 3 --n 100 --out DIR`:
ARC tasks made in a slot model's latent (latent/tasks.py), written as DIR/<id>.json in the standard
task layout (what `data.source=DIR` reads), each task's recipe as DIR/recipes/<id>.json, what was
kept and left out in DIR/recipes/index.json, and a picture of the first tasks in DIR/tasks.png.

The folder is written whole or not at all: into a temporary folder beside it, renamed at the end.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from ..data.grids import atoms_canvas
from ..data.validity import ATOMS, TOUCHING, Check
from ..errors import ArcVaeError
from ..files import write_json_atomic
from ..latent.object_prior import load_object_prior
from ..latent.shape_maps import load_shape_maps
from ..latent.slot_code import require_slot_model
from ..latent.slot_operations import KINDS
from ..latent.tasks import TARGETS, Generator, Recipe, generate_tasks
from ..latent.trained_run import load_run
from ..pictures.grids import save_grid_table
from .latent_commands import run_parser, written_by
from .parser import EXIT_CHECK_FAILED, EXIT_OK, positive

PICTURED = 6  # tasks in the picture


def kinds_of(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(","))
    for kind in kinds:
        if kind not in KINDS:
            raise ArcVaeError(
                f"--ops: unknown operation '{kind}' (the operations: {', '.join(KINDS)})"
            )
    return kinds


def tasks_main(argv: list[str]) -> int:
    p = run_parser(
        "tasks",
        "Generate ARC tasks in a slot model's latent: input = decode(z), output = decode(F(z)), "
        "F a chain of operations on the code; only tasks whose every grid is valid and whose "
        "outputs are exactly F of their inputs are kept.",
    )
    p.add_argument(
        "--ops", default=",".join(KINDS), help=f"the operations F draws from: {', '.join(KINDS)}"
    )
    p.add_argument("--depth", type=positive, default=1, help="operations in each task's chain")
    p.add_argument("--pairs", type=positive, default=3, help="train pairs a task (and one test)")
    p.add_argument("--n", type=positive, default=100, help="tasks to write")
    p.add_argument(
        "--objects",
        type=positive,
        help="objects in every input (default: as many as the prior draws, as in the data)",
    )
    p.add_argument(
        "--object",
        choices=TARGETS,
        default="first",
        help="the object of each input F acts on: the first in reading order (default) or the "
        "largest",
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    kinds = kinds_of(args.ops)
    if not args.out:
        raise ArcVaeError("--out DIR: the folder to write the tasks into")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ArcVaeError(f"--out {out}: exists and is not an empty folder; nothing was written")
    run = load_run(args.run, args.checkpoint, args.device)
    require_slot_model(run, "tasks")
    check = atoms_canvas(run.config.data) or Check(
        TOUCHING if run.net.connectivity == 8 else ATOMS, run.canvas
    )
    if args.objects is not None and args.objects > run.net.slots:
        raise ArcVaeError(f"--objects {args.objects}: this model has {run.net.slots} slots")
    generator = Generator(run.net, load_shape_maps(run), load_object_prior(run), check)
    recipe = Recipe(kinds, args.depth, args.pairs, args.objects, args.object)
    started = time.perf_counter()
    tasks, dropped, drawn = generate_tasks(generator, recipe, args.n, args.seed, run.decode)
    seconds = time.perf_counter() - started
    index = {
        **written_by(run),
        "ops": list(kinds),
        "depth": args.depth,
        "pairs": args.pairs,
        "objects": args.objects,
        "object": args.object,
        "seed": args.seed,
        "rules": check.rules.name,
        "asked": args.n,
        "kept": len(tasks),
        "candidates": drawn,
        "left_out": dict(dropped),
        "seconds": seconds,
        "tasks": {},
    }
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        for i, task in enumerate(tasks):
            name = f"task_{i:04d}"
            write_json_atomic(temporary / f"{name}.json", task.as_arc())
            write_json_atomic(temporary / "recipes" / f"{name}.json", task.recipe())
            index["tasks"][name] = task.recipe()["operations"]
        write_json_atomic(temporary / "recipes" / "index.json", index)
        if tasks:
            shown = tasks[:PICTURED]
            save_grid_table(
                temporary / "tasks.png",
                [[g for pair in task.pairs for g in pair] for task in shown],
                f"{len(shown)} of {len(tasks)} tasks from {args.run} (step {run.step}): "
                "input, output per pair, the test pair last",
                [task.recipe()["operations"] for task in shown],
            )
        if out.exists():
            out.rmdir()
        temporary.rename(out)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    print(
        f"kept {len(tasks)} of {drawn} candidate tasks in {seconds:.1f} s (rules: "
        f"{check.rules.name}); left out: "
        + (", ".join(f"{why} {count}" for why, count in dropped.most_common()) or "none")
    )
    print(f"wrote {len(tasks)} tasks to {out} (recipes in {out / 'recipes'})")
    return EXIT_OK if len(tasks) == args.n else EXIT_CHECK_FAILED
