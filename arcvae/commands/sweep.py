"""`python -m arcvae sweep CONFIG [CONFIG ...] --out DIR [--seeds 0 1 2] [--base FILE]
[--part K/N] [overrides]`.

Runs several configurations one after another into DIR/<config>[-seedN], then writes the compare
table (DIR/compare.txt) and overlaid curves (DIR/compare.png). Resumable: a finished run is
skipped, an interrupted one is resumed from its checkpoint, so rerunning the same command after a
stop only does what is left.

A sweep file is a CONFIG whose one key is `sweep`: axes, each a mapping from a value's name to the
config keys it sets (dotted, e.g. `beta.max_beta: 0.5`). Every combination of one value per axis is
a run, DIR/<value>-<value>-..., on the defaults (or `--base`), the command line's overrides on top:

    sweep:
      latent: {cells: {}, global: {model.cell_dims: 0, model.latent_dim: 256}}
      beta: {b0.5: {beta.max_beta: 0.5}, b1: {beta.max_beta: 1}}

`--part K/N` runs every N-th run from the K-th, so N processes share one sweep's folder (on two
cores, two one-thread processes train more grids an hour than one with both).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..config_io import load_config, overrides_to_tree, read_yaml
from ..errors import ConfigError
from ..pictures.run_pictures import RunPictures
from ..training.checkpoint import list_checkpoints
from ..training.trainer import train
from .compare import compare_runs
from .parser import EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_OK, Parser

FINISHED = ("completed", "collapsed")


def sweep_parser() -> Parser:
    p = Parser(
        prog="python -m arcvae sweep",
        description="Run configurations one after another, then compare.",
    )
    p.add_argument(
        "configs", nargs="+", help="config files; key=value items are overrides applied to all"
    )
    p.add_argument(
        "--out", required=True, help="folder that holds one run folder per configuration"
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="train each configuration once per seed (put overrides before this)",
    )
    p.add_argument(
        "--base",
        help="a config file under every configuration (its keys, then each file's, then overrides)",
    )
    p.add_argument(
        "--part",
        type=part_of,
        default=(1, 1),
        metavar="K/N",
        help="run only every N-th run from the K-th (N processes share the sweep)",
    )
    return p


def part_of(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N with 1 <= K <= N, e.g. 1/2")
    return int(match[1]), int(match[2])


def run_state(run_dir: Path) -> str:
    """'done', 'resume' (a checkpoint to continue from) or 'new'."""
    summary = run_dir / "summary.json"
    if summary.exists() and json.loads(summary.read_text()).get("status") in FINISHED:
        return "done"
    return "resume" if list_checkpoints(run_dir) else "new"


@dataclass(frozen=True)
class PlannedRun:
    config: str | None  # the config file (None: the defaults, under a sweep file)
    settings: tuple[str, dict] | None  # a sweep file's keys for this run: (where, tree)
    extra: list[str]  # overrides of this run alone (its seed)
    run_dir: Path

    @property
    def source(self) -> str:
        """Where the run's settings come from, for messages."""
        return self.settings[0] if self.settings else str(self.config)


def sweep_axes(path: str, tree: dict) -> list[tuple[str, dict]]:
    """A sweep file's runs: (name, tree of config keys) for every combination of one value per
    axis, the first axis outermost."""
    axes = tree["sweep"]
    if len(tree) != 1 or not isinstance(axes, dict) or not axes:
        raise ConfigError(f"{path}: a sweep file has one key, 'sweep', a mapping of axes")
    values = []
    for axis, choices in axes.items():
        if not isinstance(choices, dict) or not choices:
            raise ConfigError(f"{path}: sweep.{axis} must map value names to config keys")
        for name, keys in choices.items():
            if not isinstance(keys, dict):
                raise ConfigError(f"{path}: sweep.{axis}.{name} must map config keys to values")
        values.append(list(choices.items()))
    runs = []
    for combination in itertools.product(*values):
        keys = [
            f"{key}={json.dumps(value)}"
            for _, chosen in combination
            for key, value in chosen.items()
        ]
        runs.append(("-".join(str(name) for name, _ in combination), overrides_to_tree(keys)))
    return runs


def plan(configs: list[str], seeds: list[int] | None, out: Path) -> list[PlannedRun]:
    """Every run of the sweep: each config file (or each combination of a sweep file) per seed."""
    runs = []
    for config in configs:
        tree = read_yaml(Path(config))
        if "sweep" in tree:
            named = [
                (name, None, (f"{config}: {name}", keys)) for name, keys in sweep_axes(config, tree)
            ]
        else:
            named = [(Path(config).stem, config, None)]
        for name, file, settings in named:
            for seed in seeds or [None]:
                extra = [] if seed is None else [f"train.seed={seed}"]
                folder = name if seed is None else f"{name}-seed{seed}"
                runs.append(PlannedRun(file, settings, extra, out / folder))
    return runs


def checked_config(run: PlannedRun, overrides: list[str], base: str | None) -> Config:
    """The run's config; an error names the run's file (and its sweep-file combination)."""
    try:
        return load_config(run.config, overrides + run.extra, base, run.settings)
    except ConfigError as exc:
        if run.source in str(exc):
            raise
        raise ConfigError(f"{run.source}: {exc}") from None


def sweep_main(argv: list[str]) -> int:
    args = sweep_parser().parse_intermixed_args(argv)
    overrides = [c for c in args.configs if "=" in c]
    configs = [c for c in args.configs if "=" not in c]
    out = Path(args.out)
    runs = plan(configs, args.seeds, out)
    cfgs = [checked_config(run, overrides, args.base) for run in runs]  # every one before any runs
    k, n = args.part
    failed = []
    for run, cfg in list(zip(runs, cfgs))[k - 1 :: n]:
        run_dir = run.run_dir
        state = run_state(run_dir)
        print(
            f"== {run_dir.name}: {run.source} "
            f"({'already finished, skipped' if state == 'done' else state})",
            flush=True,
        )
        if state == "done":
            continue
        summary = train(
            cfg,
            run_dir,
            resume=state == "resume",
            overwrite=state == "new",
            pictures=RunPictures(),
        )
        if summary["status"] == "interrupted":
            print("sweep interrupted; rerun the same command to continue", flush=True)
            return EXIT_INTERRUPTED
        if summary["status"] not in FINISHED:
            failed.append(run_dir.name)
    compare_runs([str(run.run_dir) for run in runs], out)
    if failed:
        print(f"runs that failed: {', '.join(failed)}")
    return EXIT_CHECK_FAILED if failed else EXIT_OK
