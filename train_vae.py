"""Train a β-VAE on ARC grids: `python train_vae.py --config FILE [key=value ...] [--out DIR]`.

The same as `python -m arcvae train ...`; see README.md.
"""

import sys

from arcvae.commands.cli import main

if __name__ == "__main__":
    sys.exit(main())
