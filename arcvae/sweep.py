"""`python -m arcvae sweep CONFIG [CONFIG ...] --out DIR [--seeds 0 1 2] [--base FILE] [overrides]`.

Runs several configurations one after another into DIR/<config>[-seedN], then writes the compare
table (DIR/compare.txt) and overlaid curves (DIR/compare.png). Resumable: a finished run is
skipped, an interrupted one is resumed from its checkpoint, so rerunning the same command after a
stop only does what is left.
"""

from __future__ import annotations

import json
from pathlib import Path

from .checkpoint import list_checkpoints
from .compare import compare_runs
from .config_io import load_config
from .parser import EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_OK, Parser
from .trainer import train

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
    return p


def run_state(run_dir: Path) -> str:
    """'done', 'resume' (a checkpoint to continue from) or 'new'."""
    summary = run_dir / "summary.json"
    if summary.exists() and json.loads(summary.read_text()).get("status") in FINISHED:
        return "done"
    return "resume" if list_checkpoints(run_dir) else "new"


def plan(
    configs: list[str], seeds: list[int] | None, out: Path
) -> list[tuple[str, list[str], Path]]:
    """(config file, extra overrides, run folder) for every run of the sweep."""
    runs = []
    for config in configs:
        name = Path(config).stem
        for seed in seeds or [None]:
            extra = [] if seed is None else [f"train.seed={seed}"]
            runs.append((config, extra, out / (name if seed is None else f"{name}-seed{seed}")))
    return runs


def sweep_main(argv: list[str]) -> int:
    args = sweep_parser().parse_intermixed_args(argv)
    overrides = [c for c in args.configs if "=" in c]
    configs = [c for c in args.configs if "=" not in c]
    out = Path(args.out)
    runs = plan(configs, args.seeds, out)
    cfgs = [
        load_config(config, overrides + extra, base=args.base) for config, extra, _ in runs
    ]  # every config checked first
    failed = []
    for (config, _, run_dir), cfg in zip(runs, cfgs):
        state = run_state(run_dir)
        print(
            f"== {run_dir.name}: {config} "
            f"({'already finished, skipped' if state == 'done' else state})",
            flush=True,
        )
        if state == "done":
            continue
        summary = train(cfg, run_dir, resume=state == "resume", overwrite=state == "new")
        if summary["status"] == "interrupted":
            print("sweep interrupted; rerun the same command to continue", flush=True)
            return EXIT_INTERRUPTED
        if summary["status"] not in FINISHED:
            failed.append(run_dir.name)
    compare_runs([str(run_dir) for _, _, run_dir in runs], out)
    if failed:
        print(f"runs that failed: {', '.join(failed)}")
    return EXIT_CHECK_FAILED if failed else EXIT_OK
