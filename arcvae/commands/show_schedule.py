"""`--show-schedule`: see β over the run before spending compute (no data, no model, no
training)."""

from __future__ import annotations

from pathlib import Path

from ..config import BetaConfig, Config
from ..pictures.curves import save_beta_schedule
from ..training.schedules import SCHEDULE_PARAMS, schedule_warnings, scheduled_beta

# Points per epoch in the plot: β moves within an epoch, and a cycle can be shorter than one.
_POINTS_PER_EPOCH = 20
_POINTS_PER_CYCLE = 40


def describe(b: BetaConfig, epochs: int) -> str:
    """The header: the schedule's name and only the parameters it reads
    (schedules.SCHEDULE_PARAMS)."""
    params = " ".join(f"{key}={_value(getattr(b, key))}" for key in SCHEDULE_PARAMS[b.schedule])
    return f"# beta schedule {b.schedule}: {params}; train.epochs={epochs}"


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def explain_adaptive(b: BetaConfig) -> list[str]:
    """What the feedback schedule does, in place of a curve it does not have."""
    return [
        "# adaptive has no fixed curve: beta is set every step by a PI controller (ControlVAE) "
        "from the",
        f"# measured mean KL per latent dimension. It starts at min_beta={b.min_beta:g}, rises "
        "while KL/dim is above",
        f"# target_kl_per_dim={b.target_kl_per_dim:g} nats, falls while it is below, and never "
        "leaves"
        f" [{b.min_beta:g}, {b.max_beta:g}].",
        "# Watch `beta` and `kl_dim_mean` in metrics.jsonl / TensorBoard. No plot written.",
    ]


def show_schedule(cfg: Config, out_dir: Path) -> None:
    """Print `epoch beta` per epoch and write plots/beta_schedule.png in `out_dir`."""
    b = cfg.beta
    epochs = cfg.train.epochs
    print(describe(b, epochs))
    for note in schedule_warnings(b, epochs, cfg.loss.free_bits):
        print(f"# warning: {note}")
    if b.schedule == "adaptive":
        print("\n".join(explain_adaptive(b)))
        return
    print("epoch beta")
    for epoch in range(epochs + 1):  # the start of each epoch, and the end of the run
        print(f"{epoch} {scheduled_beta(b, epoch, epochs):.6g}")
    n = max(_POINTS_PER_EPOCH * epochs, _POINTS_PER_CYCLE * b.n_cycles)
    fine = [epochs * i / n for i in range(n + 1)]
    plots = Path(out_dir) / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    save_beta_schedule(
        plots / "beta_schedule.png",
        fine,
        [scheduled_beta(b, e, epochs) for e in fine],
        describe(b, epochs).lstrip("# "),
    )
    print(f"# plot: {plots / 'beta_schedule.png'}")
