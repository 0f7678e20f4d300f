"""A prior over a slot model's codes that draws valid grids: objects placed one at a time, each on a
free place, fitted to the posterior means μ of the training grids (`sample --prior objects`).

N(0, I) and a mixture over whole codes know nothing of what a grid of objects is: their draws put
objects on top of each other, next to each other (two objects then parse as one), off the canvas,
or draw a shape code into a stray pixel (docs/latent.md has the figures). This prior builds a code
the way the generators build a grid, from numbers fitted to μ and the model's own drawing:

- how many objects: a categorical, the shares of the training codes' present slots;
- each object's appearance: its shape code with its height and width (z of the rounded integers, as
  the decoder reads them) from a Gaussian mixture fitted to the present slots (full covariances:
  shape, height and width go together), its colour from a categorical of the codes' colours;
- the object is drawn alone by the model (`slot_code.drawn`); a drawing that is not one connected
  object (under `model.connectivity`) of a size the training objects have (`pixels`, their drawn
  sizes) is drawn again;
- its place: p(row | height) p(col | width), smoothed counts of the training codes, times the hard
  constraint that the drawn object fits the canvas, overlaps no object placed before and touches
  none of its own colour (they would parse as one object); where the training codes' objects never
  touch (`may_touch`: atoms grids, 4-connected) it touches none at all. An object with no free place
  is drawn again, up to TRIES times, then dropped, as the generators drop one;
- the placed objects go into the slots in reading order of their first pixel, as the encoder orders
  them; an absent slot is presence -1 and 0 elsewhere (what the encoder writes).

Why this design and not a flow or a mixture over whole codes: the constraints (no overlap, no
touching, on the canvas) are hard and combinatorial, and checking them on the model's own drawing
makes them exact whatever the decoder draws; what is left to density estimation (one object's
appearance) is small and smooth. The prior holds fitted numbers only (plain arrays, no training
grid or code): `load_object_prior` fits it once per checkpoint and keeps it as RUN/object_prior.npz.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.grids import Grids, load_datasets
from ..files import write_atomic
from ..models.slots import components
from . import inference
from .slot_code import (
    code_of,
    drawn,
    grown,
    in_reading_order,
    parse,
    part_index,
    read,
    require_slot_model,
    slots_of,
    value_of,
)
from .trained_run import TrainedRun

FIT_GRIDS = 40_000  # the training grids the prior is fitted to (the first ones; ~10 s to encode)
MIXTURE_COMPONENTS = 32  # of the appearance mixture (measured: docs/records/*-object-prior.json)
MIXTURE_OBJECTS = 60_000  # objects the mixture is fitted to, at most (EM time grows with them)
REG_COVAR = 1e-4  # added to the mixture's variances: height and width take few values
SMOOTHING = 0.5  # counts added to each place of the position tables where the box fits
TRIES = 20  # draws of an object's appearance before it is dropped
TOUCH_SHARE = 0.01  # objects may touch when more training codes than this hold a touching pair
# without the training objects' sizes: the sizes an object may draw at, quantiles of the sizes the
# model draws the training codes' objects at (a few are drawn wrong)
PIXEL_QUANTILES = (0.001, 0.999)
DRAW_BATCH = 2048  # codes drawn at once while fitting
CACHE = "object_prior.npz"
# where each exact part sits in a slot (slot_code.part_index); the shape code starts at SHAPE
PRESENCE, ROW, COL, HEIGHT, WIDTH, COLOUR = (
    part_index(name) for name in ("presence", "row", "col", "height", "width", "colour")
)
SHAPE = COLOUR + 1
VERSION = 1  # of the cache's layout and of the fit: a cache of another version is fitted again


@dataclass
class ObjectPrior:
    """The fitted numbers (module docstring), plain arrays; `sample` draws codes from them."""

    counts: np.ndarray  # (K + 1,) the share of grids with 0..K objects
    colours: np.ndarray  # (9,) the share of objects of colour 1..9
    weights: np.ndarray  # (M,) the appearance mixture: z of [height, width, shape dims]
    means: np.ndarray  # (M, A)
    covariances: np.ndarray  # (M, A, A)
    rows: np.ndarray  # (C + 1, C): p(row | height), a row per height 0..C
    cols: np.ndarray  # (C + 1, C): p(col | width)
    pixels: np.ndarray  # (2,) the fewest and the most pixels an object may draw
    may_touch: np.ndarray  # () bool: may objects of two colours touch?
    connectivity: np.ndarray  # () 4 or 8: what touching is
    step: np.ndarray  # () the checkpoint step of the model it was fitted to
    grids: np.ndarray  # () the training codes it was fitted to

    @property
    def description(self) -> str:
        return (
            f"the object prior: objects placed free of each other, their counts, colours, places "
            f"and a {len(self.weights)}-component mixture of their codes fitted to μ of "
            f"{int(self.grids)} training grids"
        )

    def sample(
        self, net: torch.nn.Module, n: int, seed: int, objects: int | None = None
    ) -> torch.Tensor:
        """z (n, D) float32 on the CPU: n codes, each a grid of objects (module docstring);
        `objects`: that many objects a grid instead of the fitted count (fewer where no place is
        free)."""
        rng = np.random.default_rng(seed)
        device = next(net.parameters()).device
        canvas = self.rows.shape[1]
        if objects is None:
            wanted = rng.choice(len(self.counts), n, p=self.counts)  # (n,) objects a grid
        else:
            wanted = np.full(n, objects)
        occupied = torch.zeros(n, canvas, canvas, dtype=torch.long, device=device)  # 0 or colour
        z = torch.zeros(n, net.slots, net.per_slot)
        z[..., PRESENCE] = -1.0  # absent, as the encoder writes an empty slot
        for j in range(int(wanted.max(initial=0))):
            code, placed = self.place(net, rng, occupied, torch.from_numpy(wanted > j))
            z[:, j] = torch.where(placed[:, None], code, z[:, j])
        return in_reading_order(net, z.flatten(1).to(device), canvas).cpu()

    def place(
        self, net, rng: np.random.Generator, occupied: torch.Tensor, todo: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One more object for each grid `todo` (n,) bool, painted into `occupied` (n, C, C):
        its slot's code (n, per_slot) and whether it was placed (n,) bool: not for grids not
        asked, nor where no appearance of TRIES found a free place."""
        n, canvas, _ = occupied.shape
        code = torch.zeros(n, net.per_slot)
        placed = torch.zeros(n, dtype=torch.bool)
        todo = todo.clone()
        for _ in range(TRIES):
            index = todo.nonzero().squeeze(1)
            if not len(index):
                break
            slot, mask = self.appearance(net, rng, len(index), canvas)  # (m, per_slot), (m, C, C)
            colour = value_of("colour", slot[:, COLOUR]).to(occupied.device)
            free = free_places(mask, occupied[index.to(occupied.device)], colour, self)
            height = value_of("height", slot[:, HEIGHT]).numpy()
            width = value_of("width", slot[:, WIDTH]).numpy()
            weights = torch.from_numpy(self.rows[height][:, :, None] * self.cols[width][:, None, :])
            weights = weights * free.cpu() * self.drawable(mask).cpu()[:, None, None]  # (m, C, C)
            found = weights.flatten(1).sum(1) > 0
            if not found.any():
                continue
            at = pick(rng, weights.flatten(1)[found])  # (f,) raster index of the top-left
            row, col = at // canvas, at % canvas
            chosen = index[found]
            slot = slot[found]
            slot[:, ROW] = code_of("row", row)
            slot[:, COL] = code_of("col", col)
            moved = shift(mask[found.to(mask.device)], row, col)  # (f, C, C) bool
            target = chosen.to(occupied.device)
            painted = colour[found.to(colour.device), None, None]
            occupied[target] = torch.where(moved, painted, occupied[target])
            code[chosen] = slot
            placed[chosen] = True
            todo[chosen] = False
        return code, placed

    def appearance(self, net, rng: np.random.Generator, m: int, canvas: int):
        """m objects' slots (m, per_slot) at (0, 0), and their cells (m, C, C) bool as the model
        draws each alone there."""
        chosen = rng.choice(len(self.weights), m, p=self.weights)
        noise = rng.standard_normal((m, self.means.shape[1]))
        factors = np.linalg.cholesky(self.covariances)  # (M, A, A)
        x = self.means[chosen] + np.einsum("mab,mb->ma", factors[chosen], noise)  # (m, A)
        x = torch.from_numpy(x).float()
        slot = torch.zeros(m, net.per_slot)
        slot[:, PRESENCE] = 1.0
        slot[:, ROW] = code_of("row", torch.zeros(m))  # at the top-left corner
        slot[:, COL] = code_of("col", torch.zeros(m))
        # the integers the decoder reads, on the canvas
        slot[:, HEIGHT] = code_of("height", value_of("height", x[:, 0]).clamp(1, canvas))
        slot[:, WIDTH] = code_of("width", value_of("width", x[:, 1]).clamp(1, canvas))
        colour = torch.from_numpy(rng.choice(9, m, p=self.colours) + 1)
        slot[:, COLOUR] = code_of("colour", colour)
        slot[:, SHAPE:] = x[:, 2:]
        alone = torch.zeros(m, net.slots, net.per_slot)
        alone[:, :, PRESENCE] = -1.0  # the other slots absent
        alone[:, 0] = slot
        device = next(net.parameters()).device
        mask = drawn(net, alone.flatten(1).to(device), canvas)[:, 0]  # (m, C, C)
        return slot, mask

    def drawable(self, mask: torch.Tensor) -> torch.Tensor:
        """(m,) bool: is each drawing (m, C, C) one connected object of an allowed size?"""
        found = components(mask.long(), 1, int(self.connectivity))
        size = mask.flatten(1).sum(1)
        return (found["count"] == 1) & (size >= int(self.pixels[0])) & (size <= int(self.pixels[1]))


def free_places(
    mask: torch.Tensor, occupied: torch.Tensor, colour: torch.Tensor, prior: ObjectPrior
) -> torch.Tensor:
    """(m, C, C) bool: the top-left places where each object's cells (m, C, C), drawn at (0, 0),
    stay on the canvas, cover no occupied cell (occupied: (m, C, C), 0 or the colour there) and
    touch no object they may not touch; colour (m,) the objects' colours."""
    m, canvas, _ = mask.shape
    connectivity = int(prior.connectivity)
    same = occupied == colour[:, None, None]  # one colour: touching would join them
    forbidden = (occupied > 0) | grown(same, connectivity)
    if not bool(prior.may_touch):
        forbidden |= grown(occupied > 0, connectivity)
    # off the canvas is forbidden too: the canvas padded with forbidden cells below and right
    padded = F.pad(forbidden.float(), (0, canvas - 1, 0, canvas - 1), value=1.0)  # (m, 2C-1, 2C-1)
    hits = F.conv2d(padded[None], mask.float()[:, None], groups=m)[0]  # (m, C, C)
    return hits < 0.5


def pick(rng: np.random.Generator, weights: torch.Tensor) -> torch.Tensor:
    """(f,) one index of each row of weights (f, P), drawn in proportion to them."""
    cumulative = np.cumsum(weights.double().numpy(), axis=1)
    u = rng.random(len(weights)) * cumulative[:, -1]
    return torch.from_numpy((cumulative < u[:, None]).sum(1)).long()


def shift(mask: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """Each mask (f, C, C) moved down by row and right by col (f,); the places are free, so
    nothing wraps."""
    return torch.stack(
        [torch.roll(m, (int(r), int(c)), (0, 1)) for m, r, c in zip(mask, row, col)]
    ).reshape(mask.shape)


# ---------------------------------------------------------------- fitting


def fit_object_prior(
    net: torch.nn.Module,
    mu: torch.Tensor,
    canvas: int,
    step: int = 0,
    components_: int = MIXTURE_COMPONENTS,
    covariance: str = "full",
    seed: int = 0,
    pixels: tuple[int, int] | None = None,
) -> ObjectPrior:
    """The prior (module docstring) fitted to the codes mu (N, D) of a slot model on canvas x
    canvas grids. `pixels`: the fewest and most pixels of an object (`object_sizes` of the
    training grids); None: the PIXEL_QUANTILES of the sizes the model draws the codes' objects."""
    from sklearn.mixture import GaussianMixture  # imported here: it takes a second

    parts = read(net, mu)
    present = parts["presence"]  # (N, K)
    counts = np.bincount(present.sum(1).numpy(), minlength=net.slots + 1) / len(mu)
    colour = parts["colour"][present].clamp(1, 9) - 1
    colours = np.bincount(colour.numpy(), minlength=9) / max(len(colour), 1)
    height = parts["height"][present].clamp(1, canvas)
    width = parts["width"][present].clamp(1, canvas)
    appearance = torch.cat(
        [
            code_of("height", height)[:, None],
            code_of("width", width)[:, None],
            slots_of(net, mu)[present][:, SHAPE:],
        ],
        1,
    ).double()  # (M, 2 + shape dims)
    rng = np.random.default_rng(seed)
    kept = appearance[rng.permutation(len(appearance))[:MIXTURE_OBJECTS]].numpy()
    distinct = len(np.unique(kept, axis=0))  # a small set: no more components than points
    mixture = GaussianMixture(
        min(components_, distinct),
        covariance_type=covariance,
        reg_covar=REG_COVAR,
        random_state=seed,
    ).fit(kept)
    covariances = full_covariances(mixture, appearance.shape[1])
    sizes, touching = drawn_objects(net, mu, canvas)
    return ObjectPrior(
        counts=counts,
        colours=colours,
        weights=mixture.weights_ / mixture.weights_.sum(),
        means=mixture.means_,
        covariances=covariances,
        rows=position_table(height, parts["row"][present], canvas),
        cols=position_table(width, parts["col"][present], canvas),
        pixels=np.array(
            pixels or np.quantile(sizes, PIXEL_QUANTILES, method="nearest"), dtype=np.int64
        ),
        may_touch=np.array(touching > TOUCH_SHARE),
        connectivity=np.array(net.connectivity),
        step=np.array(step),
        grids=np.array(len(mu)),
    )


def full_covariances(mixture, dims: int) -> np.ndarray:
    """(M, A, A) the mixture's covariances whatever its covariance_type."""
    kind, cov, m = mixture.covariance_type, mixture.covariances_, mixture.n_components
    if kind == "full":
        return cov
    if kind == "tied":
        return np.repeat(cov[None], m, 0)
    if kind == "diag":
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(dims)  # spherical


def position_table(extent: torch.Tensor, at: torch.Tensor, canvas: int) -> np.ndarray:
    """(C + 1, C): p(place | extent), counts of (extent, place) pairs plus SMOOTHING at every place
    where an object of that extent fits, normalised per extent (0-extent row uniform, unused)."""
    table = np.zeros((canvas + 1, canvas))
    np.add.at(table, (extent.numpy(), at.clamp(0, canvas - 1).numpy()), 1.0)
    places = np.arange(canvas)
    fits = places[None, :] + np.arange(canvas + 1)[:, None] <= canvas  # (C + 1, C)
    table = (table + SMOOTHING) * fits
    return table / table.sum(1, keepdims=True)


def drawn_objects(net, mu: torch.Tensor, canvas: int) -> tuple[np.ndarray, float]:
    """What the model draws of the codes mu (N, D): each present slot's size in cells (M,), and the
    share of codes where two slots' objects touch (under `model.connectivity`)."""
    device = next(net.parameters()).device
    sizes, touching = [], 0
    for start in range(0, len(mu), DRAW_BATCH):
        chunk = mu[start : start + DRAW_BATCH].to(device)
        cells = drawn(net, chunk, canvas)  # (B, K, C, C)
        present = read(net, chunk)["presence"]
        cells = cells & present[..., None, None]
        sizes.append(cells.flatten(2).sum(2)[present].cpu().numpy())
        B, K = present.shape
        near = grown(cells.flatten(0, 1), net.connectivity).view(B, K, canvas, canvas)
        # slot k's neighbourhood meets another slot's cells
        others = cells.sum(1, keepdim=True) - cells.long() > 0  # (B, K, C, C)
        touching += int((near & others).flatten(1).any(1).sum())
    return np.concatenate(sizes), touching / max(len(mu), 1)


# ---------------------------------------------------------------- the cache


def load_object_prior(run: TrainedRun, train: Grids | None = None) -> ObjectPrior:
    """The run's object prior: RUN/object_prior.npz when it was fitted to this checkpoint's step,
    else fitted to μ of the first FIT_GRIDS training grids (`train`, default: loaded as training
    loads them) and written there."""
    require_slot_model(run, "--prior objects")
    path = Path(run.path) / CACHE
    cached = read_prior(path)
    if cached is not None and int(cached.step) == run.step:
        return cached
    start = time.perf_counter()
    if train is None:
        train = load_datasets(run.config.data)[0]
    grids = train.select(np.arange(min(FIT_GRIDS, len(train))))
    mu = inference.encode_grids(run.net, grids, run.config, run.device)[0]
    pixels = object_sizes(grids, run.net.slots, run.net.connectivity)
    prior = fit_object_prior(run.net, mu, run.canvas, step=run.step, pixels=pixels)
    save_prior(path, prior)
    print(
        f"object prior: fitted to μ of {len(grids)} training grids (step {run.step}) in "
        f"{time.perf_counter() - start:.1f} s, kept in {path}"
    )
    return prior


def object_sizes(grids: Grids, slots: int, connectivity: int) -> tuple[int, int]:
    """The fewest and the most pixels of the grids' objects, as the encoder parses them."""
    found = parse(grids.pixels, slots, connectivity)
    size = found["pixels"][found["present"]]
    if not len(size):  # no objects at all: no bounds
        return grids.pixels[0].numel(), 0
    return int(size.min()), int(size.max())


def save_prior(path: Path, prior: ObjectPrior) -> None:
    arrays = {name: np.asarray(value) for name, value in asdict(prior).items()}
    write_atomic(path, lambda f: np.savez(f, version=np.array(VERSION), **arrays))


def read_prior(path: Path) -> ObjectPrior | None:
    """The prior kept at path, or None when there is none or it is of another VERSION."""
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as kept:
        if "version" not in kept.files or int(kept["version"]) != VERSION:
            return None
        return ObjectPrior(**{name: kept[name] for name in ObjectPrior.__dataclass_fields__})
