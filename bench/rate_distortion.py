"""The rate-distortion curve of a sweep (issue 26): each run's last validation record as a point,
rate (the KL) against distortion (the unweighted -log p(x|z) at one z ~ q), in bits a grid, beside
the lossless codes of the same grids as lines of equal total (rate + distortion = the code's bits).

    python -m arcvae sweep configs/sweeps/rate_distortion.yaml --out runs/rd
    python bench/rate_distortion.py runs/rd --out docs/images/rate_distortion.png

Prints a Markdown table (one row per run, by latent and β) and the baselines, computed here on the
validation grids of the first run's config; `--json FILE` writes both for a record.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's arcvae
from arcvae.config_io import load_config_text
from arcvae.data.grids import load_datasets
from arcvae.training.bits import baselines

BASELINES = ("order0", "deflate_per_grid", "xz_whole_set")
COLUMNS = ("latent", "β", "free bits", "rate", "distortion", "−ELBO", "exact", "non-black")


def point(run: Path) -> dict | None:
    """A finished run's figures, or None (not finished, or no bits in its records)."""
    summary = run / "summary.json"
    if not summary.exists():
        return None
    final = json.loads(summary.read_text()).get("final") or {}
    if final.get("rate_bits") is None:
        return None
    cfg = load_config_text((run / "config.yaml").read_text(), str(run / "config.yaml"))
    cells = cfg.model.cell_dims or 0
    latent = f"{cfg.model.latent_dim} + {cells} a cell" if cells else f"{cfg.model.latent_dim}"
    return {
        "run": run.name,
        "latent": latent,
        "beta": cfg.beta.max_beta,
        "free_bits": cfg.loss.free_bits,
        "rate": final["rate_bits"],
        "distortion": final["distortion_bits"],
        "neg_elbo": final["neg_elbo_bits"],
        "exact": final["grid_accuracy"],
        "non_black": final["non_black_accuracy"],
        "config": cfg,
    }


def draw(points: list[dict], lossless: dict[str, float], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 6))
    curves: dict[tuple, list[dict]] = {}
    for p in points:
        curves.setdefault((p["latent"], p["free_bits"]), []).append(p)
    for (latent, free_bits), members in sorted(curves.items()):
        members.sort(key=lambda p: p["beta"])
        ax.plot(
            [p["rate"] for p in members],
            [p["distortion"] for p in members],
            "o-" if len(members) > 1 else "s",
            label=f"latent {latent}, free bits {free_bits:g}",
        )
        for p in members if len(members) > 1 else []:  # a lone point is named by the legend
            ax.annotate(
                f"β {p['beta']:g}: {p['exact']:.0%}",
                (p["rate"], p["distortion"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
    right = max(p["rate"] + p["distortion"] for p in points) * 1.05
    top = max(p["distortion"] for p in points) * 1.3
    for name in BASELINES:
        total = lossless[name]  # rate + distortion = total: the code's bits, spent either way
        ax.plot([0, total], [total, 0], "--", color="grey", linewidth=1)
        y = top * 0.04  # named near where it meets the rate axis
        ax.annotate(f"{name} {total:.0f}", (total - y + 4, y), fontsize=8, color="grey")
    ax.set_xlim(0, right)
    ax.set_ylim(0, top)
    ax.set_xlabel("rate: KL(q(z|x) ‖ N(0, I)), bits a grid")
    ax.set_ylabel("distortion: −log p(x|z), z ~ q, bits a grid")
    ax.set_title("rate against distortion (labels: β, exact grids); dashed: lossless codes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def table(points: list[dict], lossless: dict[str, float]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for p in sorted(points, key=lambda p: (p["latent"], p["free_bits"] == 0, p["beta"])):
        cells = [
            p["latent"],
            f"{p['beta']:g}",
            f"{p['free_bits']:g}",
            f"{p['rate']:.1f}",
            f"{p['distortion']:.1f}",
            f"{p['neg_elbo']:.1f}",
            f"{p['exact']:.1%}",
            f"{p['non_black']:.1%}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    codes = ", ".join(f"{name} {bits:.1f}" for name, bits in lossless.items())
    return "\n".join(lines) + f"\n\nlossless codes of the same grids, bits a grid: {codes}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", type=Path, help="the sweep's folder (one run folder each)")
    p.add_argument("--out", type=Path, help="the picture (default: SWEEP/rate_distortion.png)")
    p.add_argument("--json", type=Path, help="also write the points and baselines here")
    args = p.parse_args()
    points = [q for run in sorted(args.sweep.iterdir()) if run.is_dir() if (q := point(run))]
    if not points:
        raise SystemExit(f"error: {args.sweep}: no finished run with bits in its records")
    _, val = load_datasets(points[0]["config"].data)
    lossless = baselines(val.unpadded())
    draw(points, lossless, args.out or args.sweep / "rate_distortion.png")
    print(table(points, lossless))
    if args.json:
        rows = [{k: v for k, v in q.items() if k != "config"} for q in points]
        args.json.write_text(json.dumps({"runs": rows, "baselines": lossless}, indent=1) + "\n")


if __name__ == "__main__":
    main()
