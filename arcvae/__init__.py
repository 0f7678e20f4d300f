"""arcvae: train β-VAEs on ARC grids without posterior collapse, then use their latent space
(`load_run`; for slot models, `operate`).

`import arcvae` loads no training code (torch, TensorBoard, matplotlib): `load_run`,
`TrainedRun` and `operate` are imported from arcvae.latent the first time they are used.
"""

__all__ = ["TrainedRun", "load_run", "operate"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in __all__:
        from . import latent

        return getattr(latent, name)
    raise AttributeError(f"module 'arcvae' has no attribute '{name}'")
