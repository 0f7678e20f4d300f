"""arcvae: train β-VAEs on ARC grids without posterior collapse."""
__version__ = "0.1.0"
