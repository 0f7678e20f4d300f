"""`python -m arcvae compare RUN_DIR [RUN_DIR ...] [--out DIR]`: several runs side by side.

Reads each run's config.yaml, metrics.jsonl and summary.json. A run killed before writing its
summary, one whose metrics.jsonl was cut short, or one without a config is still shown, with what is
missing named; figures then come from metrics.jsonl. Exit 0 when at least one run was read, 2 when
none.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config, MonitorConfig
from ..config_io import load_config_text
from ..errors import ArcVaeError
from ..pictures.curves import EVAL_SPLITS, save_comparison
from ..training.metrics import (
    alarm_start,
    collapse_reasons,
    colour_label,
    reason_kinds,
    worst_colour,
)
from ..training.records import scan_metrics
from .parser import EXIT_BAD_INPUT, EXIT_OK, Parser

RUN_FILES = ("config.yaml", "metrics.jsonl", "summary.json")
COLUMNS = [
    "run",
    "schedule",
    "epochs",
    "β",
    "KL/dim",
    "worst KL/dim",
    "AU",
    "non-black",
    "worst colour",
    "grid",
    "collapsed",
    "status",
]


@dataclass
class RunView:
    """What could be read of one run folder, and notes on what could not."""

    path: str
    config: Config | None = None
    summary: dict | None = None
    records: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        return self.summary is not None or bool(self.records)

    @property
    def evaluations(self) -> list[dict]:
        return [r for r in self.records if r["split"] in EVAL_SPLITS]


def read_run(path: str) -> RunView:
    view = RunView(path)
    folder = Path(path)
    if not folder.is_dir():
        view.notes.append("no such folder" if not folder.exists() else "not a folder")
        return view
    if not any((folder / name).exists() for name in RUN_FILES):
        view.notes.append("not a run folder (no config.yaml, metrics.jsonl or summary.json)")
        return view
    view.config = _read_config(folder, view.notes)
    view.summary = _read_summary(folder, view.notes)
    view.records, bad = scan_metrics(folder)
    if not (folder / "metrics.jsonl").exists():
        view.notes.append("no metrics.jsonl")
    elif bad:
        view.notes.append(f"metrics.jsonl: {bad} unreadable line(s) skipped (cut short by a kill?)")
    elif not view.records:
        view.notes.append("metrics.jsonl is empty")
    return view


def _read_config(folder: Path, notes: list[str]) -> Config | None:
    path = folder / "config.yaml"
    if not path.exists():
        notes.append("no config.yaml (schedule unknown; default alarm floors used)")
        return None
    try:
        return load_config_text(path.read_text(), str(path))
    # a run from another version of the schema: still compare its figures
    except ArcVaeError as exc:
        notes.append(f"config.yaml not usable: {exc}")
        return None


def _read_summary(folder: Path, notes: list[str]) -> dict | None:
    path = folder / "summary.json"
    if not path.exists():
        notes.append("no summary.json (interrupted or killed?): figures from metrics.jsonl")
        return None
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        notes.append(
            f"summary.json unreadable ({exc.msg} at line {exc.lineno}): figures from metrics.jsonl"
        )
        return None
    if not isinstance(summary, dict):
        notes.append("summary.json is not an object: figures from metrics.jsonl")
        return None
    return summary


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _alarm(view: RunView) -> tuple[MonitorConfig, float]:
    return (
        (view.config.monitor, alarm_start(view.config.beta))
        if view.config
        else (MonitorConfig(), 1.0)
    )


def _collapsed(view: RunView) -> str:
    """'ep3 KL+accuracy': the first flagged epoch and which parts of the alarm fired, or 'no';
    ', recovered' after it when the last evaluation judged was healthy again.

    From summary.json when there is one (a summary written before `collapsed_at_end` existed says
    nothing of recovery); otherwise judged again from the logged evaluations.
    """
    if view.summary is not None and "collapse_events" in view.summary:
        events = [(e["epoch"], e["reasons"]) for e in view.summary["collapse_events"]]
        at_end = view.summary.get("collapsed_at_end")
    else:
        monitor, start = _alarm(view)
        judged = [
            r for r in view.evaluations if r["epoch"] >= start and r.get("kl_dim_mean") is not None
        ]
        if not judged:
            return "-"
        events = [
            (r["epoch"], reasons) for r in judged if (reasons := collapse_reasons(r, monitor))
        ]
        at_end = bool(collapse_reasons(judged[-1], monitor))
    if not events:
        return "no"
    kinds = reason_kinds([reason for _, reasons in events for reason in reasons])
    return f"ep{events[0][0]:g} " + "+".join(kinds) + (", recovered" if at_end is False else "")


def _worst_kl(view: RunView):
    if view.summary is not None and "worst_kl_dim_mean_after_warmup" in view.summary:
        return view.summary["worst_kl_dim_mean_after_warmup"]
    start = _alarm(view)[1]
    values = [
        r["kl_dim_mean"]
        for r in view.evaluations
        if r["epoch"] >= start and r.get("kl_dim_mean") is not None
    ]
    return min(values, default=None)


def row_of(view: RunView) -> list[str]:
    s = view.summary or {}
    last = (view.evaluations or view.records or [{}])[-1]
    final = s.get("final") or s.get("final_train") or last
    cfg = view.config
    schedule = cfg.beta.schedule if cfg else s.get("schedule", "?")
    if cfg and cfg.loss.free_bits > 0:
        schedule += f" fb={cfg.loss.free_bits:g}"
    epochs = s.get("epochs", last.get("epoch"))
    worst = worst_colour(final.get("per_class_accuracy") or [])
    kl_dims = final.get("kl_per_dim") or []
    return [
        view.path,
        schedule,
        _fmt(epochs, "g") + (f"/{cfg.train.epochs}" if cfg else ""),
        _fmt(s.get("beta", final.get("beta")), ".3g"),
        _fmt(final.get("kl_dim_mean"), ".3f"),
        _fmt(_worst_kl(view), ".3f"),
        f"{final['active_units']}/{len(kl_dims)}" if final.get("active_units") is not None else "-",
        _fmt(final.get("non_black_accuracy"), ".1%"),
        f"{colour_label(worst[0])} {worst[1]:.0%}" if worst else "-",
        _fmt(final.get("grid_accuracy"), ".1%"),
        _collapsed(view),
        s.get("status", "no summary"),
    ]


def table(rows: list[list[str]], columns: list[str] = COLUMNS) -> str:
    """Rows under a header, each column as wide as its widest cell."""
    widths = [max(len(r[i]) for r in [columns, *rows]) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [columns, *rows]
    )


def compare_parser() -> Parser:
    p = Parser(prog="python -m arcvae compare", description="Compare training runs side by side.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders written by train_vae.py")
    p.add_argument(
        "--out",
        help="folder for compare.txt (the table) and compare.png (β, KL/dim, non-black "
        "accuracy overlaid)",
    )
    return p


def compare_main(argv: list[str]) -> int:
    args = compare_parser().parse_args(argv)
    return compare_runs(args.runs, Path(args.out) if args.out else None)


def compare_runs(paths: list[str], out: Path | None = None) -> int:
    """Print the table of these runs (and write compare.txt and compare.png into `out`); an exit
    status."""
    if out is not None and out.exists() and not out.is_dir():
        raise ArcVaeError(f"--out {out}: exists and is not a folder")
    views = [read_run(str(path)) for path in paths]
    readable = [v for v in views if v.readable]
    report = table([row_of(v) for v in readable]) if readable else ""
    noted = [v for v in views if v.notes]
    if noted:
        report += "\n\nnotes:\n" + "\n".join(f"  {v.path}: " + "; ".join(v.notes) for v in noted)
    print(report.strip("\n"))
    if not readable:
        print(f"error: none of the {len(views)} path(s) holds a readable run", file=sys.stderr)
        return EXIT_BAD_INPUT
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        monitor = _alarm(readable[0])[0]
        save_comparison(
            out / "compare.png", [(v.path, v.records) for v in readable if v.records], monitor
        )
        (out / "compare.txt").write_text(report.strip("\n") + "\n")
        print(f"\nwrote {out / 'compare.txt'} and {out / 'compare.png'}")
    return EXIT_OK
