"""`--show-schedule`: see β over the run before spending compute (no data, no training)."""
from __future__ import annotations

from pathlib import Path

from .config import Config
from .plots import save_beta_schedule
from .schedules import scheduled_beta


def show_schedule(cfg: Config, out_dir: Path) -> None:
    """Print `epoch beta` per epoch and write plots/beta_schedule.png in `out_dir`."""
    b, epochs = cfg.beta, cfg.train.epochs
    print(f"# schedule {b.schedule}: max_beta={b.max_beta:g} warmup_epochs={b.warmup_epochs:g} "
          f"ramp_epochs={b.ramp_epochs:g} n_cycles={b.n_cycles} ratio={b.ratio:g} shape={b.shape}; {epochs} epochs")
    if b.schedule == "adaptive":
        print(f"# adaptive: beta is set by feedback on the measured KL (target {b.target_kl_per_dim:g} nats/dim, "
              f"kp={b.kp:g}, ki={b.ki:g}), within [{b.min_beta:g}, {b.max_beta:g}]; it has no fixed curve to show")
        return
    print("epoch beta")
    for epoch in range(epochs + 1):
        print(f"{epoch} {scheduled_beta(b, epoch, epochs):.6g}")
    fine = [i / 20 for i in range(20 * epochs + 1)]  # 20 points per epoch: β moves within an epoch
    plots = Path(out_dir) / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    save_beta_schedule(plots / "beta_schedule.png", fine, [scheduled_beta(b, e, epochs) for e in fine],
                       f"β schedule: {b.schedule} over {epochs} epochs")
    print(f"# plot: {plots / 'beta_schedule.png'}")
