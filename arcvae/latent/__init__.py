"""What uses a trained run: `load_run` and `TrainedRun` (trained_run.py), encoding and decoding
grids (inference.py), MIG and DCI, object operations as difference vectors, latent maps (their
numbers; the pictures are in pictures/) and latent analogies; and for slot models, operations on
one object's code (slot_code, slot_operations, shape_maps), their scores (slot_scores,
slot_matching), the object prior and the task generator (tasks).

May import: training (checkpoints, evaluation, bits), models, data and the bottom modules; never
pictures or commands, so `load_run` stays light (no matplotlib).
"""

from .operate import operate
from .trained_run import TrainedRun, load_run

__all__ = ["TrainedRun", "load_run", "operate"]
