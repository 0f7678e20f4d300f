"""What a training run and the overfit check draw into plots/ (`training.run.Pictures`): handed to
them by the command line, so that training itself imports no plotting."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import Config
from ..data.grids import Grids
from ..latent.inference import encode_grids, reconstruct
from ..latent.maps import MAX_POINTS, MIN_POINTS, grid_colourings
from ..training.metrics import alarm_start
from ..training.run import Run
from .curves import save_curves
from .grids import save_reconstructions
from .maps import save_maps


class RunPictures:
    """Reconstructions and curves after each evaluation, the latent map at the end of a run."""

    def evaluation(self, run: Run, grids: Grids) -> None:
        n = min(run.cfg.monitor.n_recon_grids, len(grids))
        if n:
            shown = Grids(grids.pixels[:n].cpu(), grids.sizes[:n].cpu())
            save_reconstructions(
                run.run_dir / "plots" / "reconstructions.png",
                shown.pixels.numpy(),
                reconstruct(run.net, shown, run.cfg, run.device),
                f"epoch {run.progress.epoch}: originals above reconstructions (z = μ)",
                shown.sizes.numpy(),
            )
        save_curves(run.run_dir, run.log.records, run.cfg.monitor, alarm_start(run.cfg.beta))
        last = run.progress.epoch == run.cfg.train.epochs
        if last and len(grids) >= MIN_POINTS:  # the map of the latent the run ends with
            shown = grids.select(np.arange(min(len(grids), MAX_POINTS)))
            mu = encode_grids(run.net, shown, run.cfg, run.device)[0].numpy()
            save_maps(
                run.run_dir / "plots",
                mu,
                grid_colourings(shown),
                f"epoch {run.progress.epoch}: μ of {len(mu)} grids",
                ("pca",),
            )

    def overfit(
        self,
        run_dir: Path,
        records: list[dict],
        cfg: Config,
        picked: Grids,
        predicted: list,
        title: str,
    ) -> Path:
        picture = run_dir / "plots" / "overfit_reconstructions.png"
        save_reconstructions(
            picture, picked.pixels.numpy(), predicted, title, sizes=picked.sizes.numpy()
        )
        save_curves(run_dir, records, cfg.monitor, alarm_start(cfg.beta))
        return picture
