"""arcvae: train β-VAEs on ARC grids without posterior collapse, then use their latent space
(`load_run`)."""

from .latent import TrainedRun, load_run

__all__ = ["TrainedRun", "load_run"]
__version__ = "0.1.0"
