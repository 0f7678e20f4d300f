"""Command line: `train_vae.py` / `python -m arcvae train`, and the other subcommands.

Exit statuses are in parser.py: 0 success, 1 a check failed, 2 bad input or config, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from ..config import Config
from ..config_io import load_config
from ..errors import ArcVaeError
from .parser import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_OK, Parser

# The subcommands besides `train`: name -> the module whose `<name>_main(argv)` runs it.
COMMANDS = {
    "compare": "compare",
    "sweep": "sweep",
    "analogy": "analogy",
    "atoms": "atoms",
    "structure": "structure",
    "map": "structure",
    "apply": "operations",
    "tasks": "tasks",
    **{
        name: "latent_commands"
        for name in ("encode", "reconstruct", "traverse", "interpolate", "sample", "evaluate")
    },
}


def train_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="train_vae.py",
        description="Train a β-VAE on ARC grids without posterior collapse.",
        epilog="Other commands (python -m arcvae COMMAND --help): " + ", ".join(COMMANDS) + ".",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        help="dotted config overrides, e.g. train.epochs=5 beta.max_beta=0.2",
    )
    p.add_argument(
        "--config", help="YAML config file (default: the built-in defaults = configs/default.yaml)"
    )
    p.add_argument("--out", help="run folder (default: runs/<config>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint"
    )
    p.add_argument(
        "--force", action="store_true", help="with --resume: accept a config that differs"
    )
    p.add_argument(
        "--overfit-batch", action="store_true", help="memorise one batch: the pipeline sanity check"
    )
    p.add_argument(
        "--show-schedule",
        action="store_true",
        help="print β per epoch and plot it, without training",
    )
    p.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the class-weight cache"
    )
    p.add_argument(
        "--recompute-class-weights",
        action="store_true",
        help="recompute and rewrite cached class weights",
    )
    return p


def resolve_config(args: argparse.Namespace) -> Config:
    config_file = args.config
    # resuming reuses the run's own config unless told otherwise
    if args.resume and not config_file:
        config_file = Path(args.resume) / "config.yaml"
        if not config_file.exists():
            raise ArcVaeError(f"{args.resume}: not a run folder (no config.yaml)")
    cfg = load_config(config_file, args.overrides)
    if args.no_cache:
        cfg.data.cache_dir = None
    return cfg


def default_out(args: argparse.Namespace) -> Path:
    name = (
        "overfit" if args.overfit_batch else (Path(args.config).stem if args.config else "default")
    )
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def train_main(argv: list[str]) -> int:
    args = train_parser().parse_intermixed_args(argv)  # overrides may come before or after flags
    cfg = resolve_config(args)
    out = Path(args.resume or args.out or default_out(args))
    if args.show_schedule:
        from .show_schedule import show_schedule

        show_schedule(cfg, out)
        return EXIT_OK
    from ..pictures.run_pictures import RunPictures  # matplotlib: only once training is asked for

    if args.overfit_batch:
        from ..training.overfit import overfit_batch

        summary = overfit_batch(
            cfg,
            out,
            overwrite=args.overwrite,
            recompute_weights=args.recompute_class_weights,
            pictures=RunPictures(),
        )
        return EXIT_OK if summary["passed"] else EXIT_CHECK_FAILED
    from ..training.trainer import train

    summary = train(
        cfg,
        out,
        overwrite=args.overwrite,
        resume=bool(args.resume),
        force=args.force,
        recompute_weights=args.recompute_class_weights,
        pictures=RunPictures(),
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one report
        print(f"run folder: {out}  status: {summary['status']}")
    return {"completed": EXIT_OK, "collapsed": EXIT_OK, "interrupted": EXIT_INTERRUPTED}.get(
        summary["status"], EXIT_CHECK_FAILED
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        # imported when used: `compare` need not load the model code
        if argv and argv[0] in COMMANDS:
            module = importlib.import_module(f".{COMMANDS[argv[0]]}", __package__)
            return getattr(module, f"{argv[0]}_main")(argv[1:])
        if argv and argv[0] == "train":
            argv = argv[1:]
        return train_main(argv)
    except ArcVaeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # Ctrl-C before the training loop took over the signal (loading data, say)
    except KeyboardInterrupt:
        print("interrupted before training started", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `--show-schedule | head`: the reader has what it wanted
        # so the exit-time flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
