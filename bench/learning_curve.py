"""Exact grids against samples seen: the learning curves of finished runs side by side, with each
run's training speed, so that the next design is judged against today's at equal samples.

    python bench/learning_curve.py runs/atoms-slots docs/records/2026-12-02-atoms-recipe.json \
        --out docs/images/atoms_learning_curve.png

Each argument is a run folder (its metrics.jsonl and config.yaml) or a record of docs/records/
whose `figures.evaluations` hold the evaluations (with `step`) and whose batch size is the recipe's
(`--batch` for those, default 256). A curve's points are its evaluations (split val): held-out grids
exact at z = μ (`grid_accuracy`) and β at that point; speed is the median of its train records'
samples_per_s (runs only). Prints one table; with --out, one picture.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arcvae.config_io import load_config  # noqa: E402
from arcvae.training.records import read_metrics  # noqa: E402


def curve(source: Path, batch: int) -> dict:
    """name, points [(samples seen, exact share, β)], samples_per_s (None for a record)."""
    if source.is_dir():
        cfg = load_config(source / "config.yaml")
        records = read_metrics(source)
        evaluations = [r for r in records if r["split"] in ("val", "train_eval")]
        speeds = [r["samples_per_s"] for r in records if r["split"] == "train"]
        batch, speed = cfg.train.batch_size, statistics.median(speeds) if speeds else None
    else:
        evaluations, speed = json.loads(source.read_text())["figures"]["evaluations"], None
    points = [(r["step"] * batch, r["grid_accuracy"], r["beta"]) for r in evaluations]
    name = source.stem if source.is_file() else source.name
    return {"name": name, "points": points, "speed": speed}


def table(curves: list[dict]) -> str:
    lines = [f"{'run':<28} {'samples/s':>9}  exact grids at samples seen (β)"]
    for c in curves:
        speed = f"{c['speed']:9.0f}" if c["speed"] else f"{'-':>9}"
        shown = "  ".join(f"{n / 1e6:.2f}M {a:.1%} ({b:g})" for n, a, b in c["points"])
        lines.append(f"{c['name']:<28} {speed}  {shown}")
    return "\n".join(lines)


def draw(curves: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for c in curves:
        seen, exact, _ = zip(*c["points"])
        ax.plot([n / 1e6 for n in seen], [100 * a for a in exact], marker="o", label=c["name"])
    ax.set_xlabel("samples seen (millions)")
    ax.set_ylabel("held-out grids exact at z = μ (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sources", nargs="+", type=Path, help="run folders or record files")
    p.add_argument("--batch", type=int, default=256, help="a record's batch size (default 256)")
    p.add_argument("--out", type=Path, help="the picture to write (PNG)")
    args = p.parse_args(argv)
    curves = [curve(source, args.batch) for source in args.sources]
    print(table(curves))
    if args.out:
        draw(curves, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
