"""Checkpoints: plain dicts written atomically (temp file, fsync, rename), loaded with weights_only.

A kill at any moment leaves either the old file set or the new one, never a half-written
checkpoint under a real name. The last `keep` checkpoints are kept.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import torch

from ..errors import ArcVaeError
from ..files import write_atomic, write_text_atomic

NAME = re.compile(r"step_(\d+)\.pt$")


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"step_{step:09d}.pt"


def rng_state() -> dict:
    """Every random stream a run draws from, as tensors and plain types (weights_only-safe)."""
    state = {
        "python": _python_state_to_list(random.getstate()),
        "numpy": _numpy_state_to_dict(np.random.get_state()),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_list_to_python_state(state["python"]))
    np.random.set_state(_dict_to_numpy_state(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, step: int, payload: dict, keep: int = 2) -> Path:
    """Write checkpoints/step_<step>.pt atomically, then prune to the newest `keep`."""
    path = checkpoint_path(run_dir, step)
    write_atomic(path, lambda f: torch.save(payload, f))
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink()
    for stale in path.parent.glob(".step_*.pt.*tmp"):  # left by a kill -9 during an earlier write
        stale.unlink()
    return path


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temp files of an interrupted write are ignored)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if NAME.search(p.name) and not p.name.startswith(".")),
        key=lambda p: int(NAME.search(p.name).group(1)),
    )


REQUIRED_KEYS = ("model", "optimizer", "controller", "progress", "rng", "config_yaml")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint's dict (tensors and plain types only: weights_only, no arbitrary pickle)."""
    state, problem = _read(Path(path), map_location)
    if problem:
        raise ArcVaeError(f"{path}: {problem}")
    return state


def load_latest(
    run_dir: Path, map_location: str | torch.device = "cpu", purpose: str = "resume from"
) -> dict:
    """The newest usable checkpoint of a run; an unusable newest one falls back to the one before.
    `purpose` completes the message when there is none: 'no checkpoint to <purpose>'."""
    found = list_checkpoints(run_dir)
    if not found:
        raise ArcVaeError(
            f"{run_dir}: no checkpoint to {purpose} (looked in {checkpoint_dir(run_dir)})"
        )
    problems = []
    for path in reversed(found):
        state, problem = _read(path, map_location)
        if not problem:
            return state
        problems.append(f"{path.name}: {problem}")
        print(f"warning: {path}: {problem}; trying the previous checkpoint")
    raise ArcVaeError(f"{run_dir}: no usable checkpoint ({'; '.join(problems)})")


def _read(path: Path, map_location) -> tuple[dict | None, str | None]:
    """(state, None), or (None, what is wrong with the file)."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        return None, "checkpoint not found"
    # torch raises many types for a corrupt file; all mean the same to the user
    except Exception as exc:
        return None, f"corrupt or unreadable checkpoint ({type(exc).__name__})"
    missing = (
        [k for k in REQUIRED_KEYS if k not in state]
        if isinstance(state, dict)
        else list(REQUIRED_KEYS)
    )
    if missing:
        return None, f"not an arcvae checkpoint (missing {', '.join(missing)})"
    return state, None


def load_state(target: torch.nn.Module | torch.optim.Optimizer, state_dict: dict) -> None:
    """A checkpoint's state into the model or optimiser; one that does not fit is one line, not a
    traceback."""
    strict = True
    # weights saved before the readout moved into `readout` (issue 13)
    if isinstance(target, torch.nn.Module):
        names = target.state_dict().keys()
        state_dict = {
            f"readout.{k}" if k not in names and f"readout.{k}" in names else k: v
            for k, v in state_dict.items()
        }
        # weights saved before the decoder's shape inputs, which start at zero: without them the
        # model decodes as it was trained
        missing = set(names) - set(state_dict)
        strict = not missing or not all(k.startswith("shape_in.") for k in missing)
    try:
        if strict:
            target.load_state_dict(state_dict)
        else:
            target.load_state_dict(state_dict, strict=False)
    except (RuntimeError, ValueError) as exc:  # --force past a changed model shape
        detail = [line.strip() for line in str(exc).splitlines() if line.strip()][
            -1
        ]  # names a tensor that does not fit
        raise ArcVaeError(
            f"checkpoint does not fit this model ({detail}); was model.* changed?"
        ) from None


def rewind_metrics(run_dir: Path, step: int) -> int:
    """Drop metrics.jsonl records logged after `step` (by a run killed past its last checkpoint),
    so the resumed run's log has each step once; returns how many were dropped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return 0
    lines = path.read_text().splitlines()
    kept = [line for line in lines if _record_step(line) is not None and _record_step(line) <= step]
    if len(kept) == len(lines):
        return 0
    write_text_atomic(path, "".join(line + "\n" for line in kept))
    return len(lines) - len(kept)


def _record_step(line: str) -> int | None:
    """A record's step, or None for a line cut short by a kill."""
    try:
        return int(json.loads(line)["step"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


# weights_only loading accepts tensors, dicts, lists and numbers, not tuples of numpy arrays:
# convert.
def _python_state_to_list(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _list_to_python_state(state: list) -> tuple:
    return (state[0], tuple(state[1]), state[2])


def _numpy_state_to_dict(state: tuple) -> dict:
    name, keys, pos, has_gauss, cached = state
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _dict_to_numpy_state(state: dict) -> tuple:
    return (
        state["name"],
        state["keys"].numpy().astype(np.uint32),
        state["pos"],
        state["has_gauss"],
        state["cached"],
    )
