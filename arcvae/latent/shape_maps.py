"""How a slot model's shape code changes when its object turns, mirrors or grows: a small network
per operation (slot_operations.LEARNT), learnt from the model's own encodings of transformed
objects.

The training grids' objects (the model's parse) are each transformed on their mask (the operation's
`on_mask`). A map takes an object's shape code μ with its height and width z's and gives a shape
code for the transformed object; it is fitted, with the model frozen, to two things at once: the
shape decoder's cross-entropy of the transformed mask inside its new box (the map must draw the
right object), and the squared distance to the shape encoder's μ of the transformed object (the
map's codes stay where the encoder puts such objects, so that later operations and the KL see
codes like the data's). A tenth of the objects is held out: `report` says how many of them the map
draws exactly.

`load_shape_maps(run)` fits them once and keeps them beside the checkpoint in RUN/shape_maps.pt,
refitted when the checkpoint's step changes.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.grids import load_datasets
from ..files import write_atomic
from ..models.slots import SlotVAE, components, mlp, to_corner
from .slot_code import code_of
from .slot_operations import LEARNT, Reflect, Rotate, Scale

FILE = "shape_maps.pt"
HIDDEN = (512, 512, 512)  # the screen of sizes: docs/latent.md
FIT_GRIDS = 20000  # training grids whose objects the maps learn from
STEPS = 2000
BATCH = 512
LR = 2e-3
CODE_WEIGHT = 1.0  # the squared distance to the encoder's μ, beside the decoder's cross-entropy
SEED = 0
HELD_OUT = 0.1
LARGEST_SHARE = 0.99  # of the training objects no larger than what scale may make
VERSION = 2  # of the fit: a file of another version is fitted again
OPERATIONS = {"rotate_90": Rotate(), "reflect_lr": Reflect("lr"), "reflect_ud": Reflect("ud")}
OPERATIONS["scale_2"] = Scale()


class ShapeMaps(nn.Module):
    """One residual MLP per LEARNT operation: shape code, height z, width z -> new shape code; and
    the largest object (pixels) a scaled one may become: LARGEST_SHARE of the training objects are
    no larger (a few merged giants are too rare for the model to draw)."""

    def __init__(self, shape_dims: int, largest_pixels: int):
        super().__init__()
        self.maps = nn.ModuleDict(
            {name: mlp([shape_dims + 2, *HIDDEN, shape_dims]) for name in LEARNT}
        )
        self.largest_pixels = largest_pixels

    def apply(
        self, name: str, shapes: torch.Tensor, height_z: torch.Tensor, width_z: torch.Tensor
    ) -> torch.Tensor:
        """The new shape codes (B, S) of objects with shape codes (B, S) and box z's (B,)."""
        with torch.no_grad():
            return self.forward(name, shapes, height_z, width_z)

    def forward(self, name, shapes, height_z, width_z) -> torch.Tensor:
        x = torch.cat([shapes, height_z[:, None], width_z[:, None]], 1)
        return shapes + self.maps[name](x)


@dataclass
class Objects:
    """The objects of some grids, one row each: their masks moved to the field's corner (M, F, F),
    box heights and widths (M,), and the model's shape code μ of each (M, S)."""

    fields: torch.Tensor
    height: torch.Tensor
    width: torch.Tensor
    shapes: torch.Tensor


def shape_mu(net: SlotVAE, fields: torch.Tensor, height: torch.Tensor, width: torch.Tensor):
    """The shape encoder's μ (M, S) of masks in the field's corner (M, F, F) with their boxes."""
    with torch.no_grad():
        coded = net.encode_shapes(
            fields.float(), code_of("height", height), code_of("width", width)
        )
    return coded[:, : net.shape_dims]


def objects_of(net: SlotVAE, grids: torch.Tensor, chunk: int = 4096) -> Objects:
    """Every object the model's parse finds in grids (N, C, C)."""
    parts = []
    for start in range(0, len(grids), chunk):
        found = components(grids[start : start + chunk].long(), net.slots, net.connectivity)
        fields = to_corner(found["masks"], found["row"], found["col"], net.field) > 0.5
        present = found["present"]
        parts.append((fields[present], found["height"][present], found["width"][present]))
    fields, height, width = (torch.cat(column) for column in zip(*parts))
    return Objects(fields, height, width, shape_mu(net, fields, height, width))


def transformed(objects: Objects, name: str, field: int, largest: int):
    """The objects the operation `name` can make, transformed: (which (M',) indices, fields
    (M', F, F), height, width)."""
    op = OPERATIONS[name]
    which, fields, heights, widths = [], [], [], []
    for i, (mask, h, w) in enumerate(
        zip(objects.fields.numpy(), objects.height.tolist(), objects.width.tolist())
    ):
        new = op.on_mask(mask[:h, :w])
        if max(new.shape) > field or new.sum() > largest:
            continue
        out = np.zeros((field, field), dtype=bool)
        out[: new.shape[0], : new.shape[1]] = new
        which.append(i)
        fields.append(out)
        heights.append(new.shape[0])
        widths.append(new.shape[1])
    return (
        torch.tensor(which, dtype=torch.long),
        torch.from_numpy(np.stack(fields)),
        torch.tensor(heights),
        torch.tensor(widths),
    )


def drawn_exactly(net: SlotVAE, codes, fields, height, width) -> torch.Tensor:
    """(M,) bool: does the shape decoder draw each mask exactly inside its box from `codes`?"""
    logits = decoder_logits(net, codes, height, width)
    inside = box_mask(height, width, net.field)
    wrong = ((logits > 0) != fields) & inside
    return ~wrong.flatten(1).any(1)


def decoder_logits(net: SlotVAE, codes, height, width) -> torch.Tensor:
    logits = net.draw_shapes(codes, code_of("height", height), code_of("width", width))
    return logits.view(len(codes), net.field, net.field)


def box_mask(height: torch.Tensor, width: torch.Tensor, field: int) -> torch.Tensor:
    steps = torch.arange(field)
    rows = steps[None, :, None] < height[:, None, None]
    return rows & (steps[None, None, :] < width[:, None, None])


def fit_shape_maps(net: SlotVAE, grids: torch.Tensor, steps: int) -> tuple[ShapeMaps, dict]:
    """The maps fitted on the objects of grids (N, C, C) (module docstring), and a report: per map,
    the objects it learnt from and the share of held-out ones it draws exactly, beside the share
    the model draws exactly from the encoder's own μ of the transformed object."""
    generator = torch.Generator().manual_seed(SEED)
    objects = objects_of(net, grids)
    pixels = objects.fields.flatten(1).sum(1).float()
    largest = int(torch.quantile(pixels, LARGEST_SHARE, interpolation="lower"))
    maps = ShapeMaps(net.shape_dims, largest)
    for p in net.parameters():
        p.requires_grad_(False)
    report = {}
    for name in LEARNT:
        which, fields, height, width = transformed(objects, name, net.field, largest)
        targets = shape_mu(net, fields, height, width)
        source = objects.shapes[which]
        source_h = code_of("height", objects.height[which])
        source_w = code_of("width", objects.width[which])
        inside = box_mask(height, width, net.field)
        order = torch.randperm(len(which), generator=generator)
        cut = int(len(order) * (1 - HELD_OUT))
        train, test = order[:cut], order[cut:]
        opt = torch.optim.Adam(maps.maps[name].parameters(), lr=LR)
        for step in range(steps):
            b = train[torch.randint(len(train), (BATCH,), generator=generator)]
            codes = maps(name, source[b], source_h[b], source_w[b])
            logits = decoder_logits(net, codes, height[b], width[b])
            drawn = F.binary_cross_entropy_with_logits(logits, fields[b].float(), reduction="none")
            loss = (drawn * inside[b]).sum((1, 2)).mean() + CODE_WEIGHT * (
                (codes - targets[b]) ** 2
            ).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            for group in opt.param_groups:  # a cosine decay to zero
                group["lr"] = LR * 0.5 * (1 + np.cos(np.pi * step / steps))
            opt.step()
        with torch.no_grad():
            codes = maps(name, source[test], source_h[test], source_w[test])
            exact = drawn_exactly(net, codes, fields[test], height[test], width[test])
            own = drawn_exactly(net, targets[test], fields[test], height[test], width[test])
        report[name] = {
            "objects": len(which),
            "held_out": len(test),
            "exact": float(exact.float().mean()),
            "encoder_exact": float(own.float().mean()),
        }
    for p in net.parameters():
        p.requires_grad_(True)
    return maps.eval(), report


def load_shape_maps(run) -> ShapeMaps:
    """The run's shape maps, fitted on its training grids the first time (and whenever its
    checkpoint's step changed since) and kept in RUN/shape_maps.pt."""
    path = Path(run.path) / FILE
    if path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved["step"] == run.step and saved.get("version") == VERSION:
            maps = ShapeMaps(run.net.shape_dims, saved["largest_pixels"])
            maps.load_state_dict(saved["state"])
            return maps.eval()
    started = time.perf_counter()
    print(
        f"fitting the shape maps of {run.path} ({len(LEARNT)} maps x {STEPS} steps; minutes on a "
        "CPU, once per checkpoint)",
        file=sys.stderr,
    )
    train, _ = load_datasets(run.config.data)
    # fitted on the CPU, where the operations use them: a copy, so the run's model stays put
    net = copy.deepcopy(run.net).cpu()
    maps, report = fit_shape_maps(net, train.pixels[:FIT_GRIDS], STEPS)
    payload = {
        "step": run.step,
        "version": VERSION,
        "state": maps.state_dict(),
        "largest_pixels": maps.largest_pixels,
        "report": report,
    }
    write_atomic(path, lambda f: torch.save(payload, f))
    exact = ", ".join(f"{name} {r['exact']:.1%}" for name, r in report.items())
    print(
        f"fitted the shape maps on {min(FIT_GRIDS, len(train))} training grids in "
        f"{time.perf_counter() - started:.0f} s (held-out objects drawn exactly: {exact}): {path}",
        file=sys.stderr,
    )
    return maps
