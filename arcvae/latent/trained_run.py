"""Use what was trained: a finished run's encoder and decoder, on grids (docs/latent.md).

    import arcvae
    run = arcvae.load_run("runs/demo")                 # its newest checkpoint, on the device
    training would pick mu, logvar = run.encode([[[0, 3], [3, 0]]])        # (N, D) each: the
    posterior q(z|x) of every grid grids = run.decode(mu + 0.5)                       # a list of N
    uint8 arrays same = run.reconstruct([[[0, 3], [3, 0]]])         # decode(encode(grids)) at z = μ

Grids go in as lists of rows or numpy arrays, any size the model accepts (1..data.grid_size a side),
checked as data files are (`data.validate_grid`); a bad one is an `ArcVaeError` naming it. Grids
come out as uint8 arrays: in symbol mode (`data.padding: symbol`) of their own shape from
`reconstruct`, of the shapes asked for or the ones the model predicts from `decode`; the whole
(grid_size, grid_size) canvas in black mode (the model does not know where a grid ends).
Everything runs through the code that training uses (`build_model`, `inference.encode_grids` /
`decode_latents`, the run's precision), so the figures agree with the run's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..canvas import Padding
from ..config import Config
from ..config_io import load_config_text
from ..data.grids import Grids, load_datasets, pad_grids, validate_grid
from ..errors import ArcVaeError, DataError
from ..models.build import build_model
from ..training import checkpoint as ckpt
from ..training.distributed import resolve_device
from ..training.threads import set_threads
from . import inference


@dataclass
class TrainedRun:
    """A run's model as one checkpoint left it, in eval mode on `device`, with the run's config."""

    path: Path
    config: Config
    net: torch.nn.Module
    device: torch.device
    step: int  # the training step the checkpoint was written at

    @property
    def canvas(self) -> int:
        """The largest grid side the model takes (data.grid_size)."""
        return self.config.data.grid_size

    @property
    def predicts_shape(self) -> bool:
        """Does decoding give each grid its own shape (symbol mode), or the whole canvas (black
        mode)?"""
        return Padding(self.config.data.padding).symbol

    def fits(self, grid: np.ndarray) -> bool:
        return max(grid.shape) <= self.canvas

    def grids(self, grids: Sequence, names: Sequence[str] | None = None) -> Grids:
        """The grids checked and padded to the model's canvas; `names` (default 'grid <i>') name a
        bad one."""
        checked = []
        for i, grid in enumerate(grids):
            name = names[i] if names is not None else f"grid {i}"
            array = validate_grid(grid.tolist() if isinstance(grid, np.ndarray) else grid, name)
            if not self.fits(array):
                raise DataError(
                    f"{name}: grid is {array.shape[0]}x{array.shape[1]}, larger than this model's "
                    f"{self.canvas}x{self.canvas} canvas (data.grid_size={self.canvas})"
                )
            checked.append(array)
        return pad_grids(checked, self.canvas)

    def encode(
        self, grids: Sequence, names: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """μ and log σ² (N, D) float32 of the posterior of each grid."""
        return self.encode_set(self.grids(grids, names))

    def encode_set(self, grids: Grids) -> tuple[np.ndarray, np.ndarray]:
        """μ and log σ² (N, D) of each grid of a dataset already on the model's canvas."""
        mu, logvar = inference.encode_grids(self.net, grids, self.config, self.device)
        return mu.numpy(), logvar.numpy()

    def decode(self, z, sizes=None) -> list[np.ndarray]:
        """Latents z (N, D) (an array, a tensor or nested lists) -> N grids: of the shapes `sizes`
        (N, 2) rows and cols, or free-running at the shape the model predicts (symbol mode)."""
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.ndim != 2 or z.shape[1] != self.net.latent_dim:
            raise ValueError(f"z must be (N, {self.net.latent_dim}), not {tuple(z.shape)}")
        if sizes is not None:
            sizes = torch.as_tensor(sizes, dtype=torch.long)
            if sizes.shape != (len(z), 2) or sizes.min() < 1 or sizes.max() > self.canvas:
                raise ValueError(
                    f"sizes must be (N, 2) = ({len(z)}, 2) rows and cols in 1..{self.canvas}, "
                    f"not {tuple(sizes.shape)}"
                )
        return inference.decode_latents(self.net, z, self.config, self.device, sizes)

    def reconstruct(self, grids: Sequence, names: Sequence[str] | None = None) -> list[np.ndarray]:
        """Each grid encoded at z = μ and decoded, in order (the picture training draws)."""
        return inference.reconstruct(self.net, self.grids(grids, names), self.config, self.device)


def load_run(
    path: str | Path, checkpoint: str | int = "last", device: str | None = None
) -> TrainedRun:
    """The model of the run in `path` from its newest usable checkpoint ('last') or that of a step
    number.

    The checkpoint is read with `weights_only=True` and holds the config the weights were trained
    with; `device` defaults to the run's `train.device`, resolved as training resolves it ('auto':
    CUDA if any). A number in the run's `train.threads` sets torch's threads for the process, as it
    did for training; `auto` leaves torch's default.
    """
    path = Path(path)
    if not path.is_dir():
        raise ArcVaeError(f"{path}: no such run folder")
    if checkpoint == "last":
        state = ckpt.load_latest(path, purpose="load")
    elif str(checkpoint).isdigit():
        state = ckpt.load_checkpoint(ckpt.checkpoint_path(path, int(checkpoint)))
    else:
        raise ArcVaeError(f"checkpoint {checkpoint!r}: give 'last' or a step number")
    cfg = load_config_text(state["config_yaml"], f"{path}: the checkpoint's config")
    set_threads(cfg.train.threads)
    net = build_model(cfg)
    ckpt.load_state(net, state["model"])
    target = resolve_device(device or cfg.train.device)
    return TrainedRun(path, cfg, net.to(target).eval(), target, int(state["progress"]["step"]))


def reference_grids(run: TrainedRun) -> tuple[Grids, str]:
    """The grids the run was evaluated on, loaded as training loaded them: its validation set, else
    its training set."""
    return reference_of(*load_datasets(run.config.data))


def reference_of(train: Grids, val: Grids | None) -> tuple[Grids, str]:
    """Of a run's datasets, those it was evaluated on, and what they are."""
    return (val, "validation") if val is not None else (train, "training")


def kl_per_dim(run: TrainedRun, grids: Grids) -> np.ndarray:
    """(D,) KL(q(z|x) ‖ p(z)) per dimension, over the grids that reach it (`kl_over_reached`)."""
    mu, logvar = inference.encode_grids(run.net, grids, run.config, run.device)
    return inference.kl_over_reached(mu, logvar, inference.reached_by(run.net, grids, run.config))
