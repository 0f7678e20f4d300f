"""The β-VAEs: one file and class per `model.arch` (conv, conv_any, resnet, patch), the parts they
share (layers.py, any_canvas.py), and `build.py`, which holds the contract every architecture meets,
the registry and `build_model`.

May import: data and the bottom modules (errors, canvas, config). No loss lives here: β is
scheduled by training.
"""
