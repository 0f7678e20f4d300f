"""Where a run's records go: a `Logger` protocol with one class per destination (metrics.jsonl,
TensorBoard, Weights & Biases), and `RunLog`, which keeps the records in memory (the summary and
the curves read them there) and hands each one to its loggers."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from matplotlib import colormaps

from ..config import MonitorConfig
from ..errors import ConfigError
from ..files import clean_json
from .tracking import KL_IMAGE_RANGE


class Logger(Protocol):
    def log(self, record: dict) -> None: ...

    def close(self) -> None: ...


class JsonlLogger:
    """Appends each record to metrics.jsonl, one JSON object a line (NaN and inf as null)."""

    def __init__(self, run_dir: Path):
        self.file = open(Path(run_dir) / "metrics.jsonl", "a", buffering=1)

    def log(self, record: dict) -> None:
        self.file.write(json.dumps(clean_json(record)) + "\n")

    def close(self) -> None:
        self.file.close()


def scalars(record: dict) -> dict[str, float]:
    """A record's numbers as `split/key` scalars, one per colour for the per-colour accuracy."""
    split = record["split"]
    out = {}
    for key, value in record.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
            out[f"{split}/{key}"] = value
    for c, acc in enumerate(record.get("per_class_accuracy") or []):
        if acc is not None:
            out[f"per_class_accuracy/{split}_colour{c}"] = acc
    return out


def kl_stripe(kl: torch.Tensor, cell: int = 8) -> np.ndarray:
    """KL per dim as an image strip (cell x cell pixels per dim), magma on a fixed log scale.

    Fixed, not per-record, limits: normalising by the record's max would paint a fully collapsed
    latent (all dims ~0) as bright as a healthy one. Black: <= KL_IMAGE_RANGE[0] nats; white: >=
    [1].
    """
    lo, hi = np.log10(KL_IMAGE_RANGE)
    level = (np.log10(np.maximum(kl.numpy(), KL_IMAGE_RANGE[0])) - lo) / (hi - lo)  # (D,) in [0, 1]
    rgb = colormaps["magma"](np.clip(level, 0, 1))[:, :3]  # (D, 3)
    # (cell, D*cell, 3)
    return np.repeat(np.repeat(rgb[None], cell, axis=0), cell, axis=1).astype(np.float32)


class TensorBoardLogger:
    """A record's scalars, and its KL per dimension as a histogram and an image strip."""

    def __init__(self, run_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def log(self, record: dict) -> None:
        step = record["step"]
        # One add_scalar per colour under one group: add_scalars would write a run folder per
        # colour.
        for key, value in scalars(record).items():
            self.writer.add_scalar(key, value, step)
        if record.get("kl_per_dim"):
            split = record["split"]
            # a dim no grid reached has no KL (None): out of the histogram, black in the strip
            kl = torch.tensor([v or 0.0 for v in record["kl_per_dim"]], dtype=torch.float32)
            measured = [v for v in record["kl_per_dim"] if v is not None]
            self.writer.add_histogram(f"kl_per_dim/{split}", torch.tensor(measured), step)
            self.writer.add_image(
                f"kl_per_dim_image/{split}", kl_stripe(kl), step, dataformats="HWC"
            )

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """The same scalars and KL histogram in a Weights & Biases run (`monitor.wandb`). Its files go
    into the run folder's wandb/; a resumed run continues the same W&B run (its id is kept in
    wandb_id.txt). `WANDB_MODE=offline` logs without a network."""

    def __init__(self, run_dir: Path, project: str, config: dict):
        import wandb

        self.wandb = wandb
        id_file = Path(run_dir) / "wandb_id.txt"
        if not id_file.exists():
            id_file.write_text(uuid.uuid4().hex[:12] + "\n")
        self.run = wandb.init(
            project=project,
            dir=str(run_dir),
            name=Path(run_dir).name,
            id=id_file.read_text().strip(),
            resume="allow",
            config=config,
        )

    def log(self, record: dict) -> None:
        values: dict = scalars(record)
        if record.get("kl_per_dim"):
            kl = np.nan_to_num(np.array(record["kl_per_dim"], dtype=float))
            values[f"kl_per_dim/{record['split']}"] = self.wandb.Histogram(kl)
        self.run.log(values, step=record["step"])

    def close(self) -> None:
        self.run.finish()


def check_wandb(monitor: MonitorConfig) -> None:
    """`monitor.wandb` needs the wandb package: say so before anything is written."""
    if not monitor.wandb:
        return
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ConfigError(
            "monitor.wandb: the wandb package is not installed (pip install wandb, or "
            "monitor.wandb=false)"
        ) from None


@dataclass
class RunLog:
    """A run's records in memory, each also handed to every logger as it comes."""

    loggers: list[Logger] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)

    def log(self, record: dict) -> None:
        self.records.append(record)
        for logger in self.loggers:
            logger.log(record)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def open_log(
    run_dir: Path,
    monitor: MonitorConfig | None = None,
    config: dict | None = None,
    records: list[dict] | None = None,
) -> RunLog:
    """The log of a run folder: metrics.jsonl and TensorBoard, and W&B with `monitor.wandb`;
    `records` are those already in metrics.jsonl (a resumed run)."""
    loggers: list[Logger] = [JsonlLogger(run_dir), TensorBoardLogger(run_dir)]
    if monitor is not None and monitor.wandb:
        loggers.append(WandbLogger(run_dir, monitor.wandb_project, config or {}))
    return RunLog(loggers, list(records or []))
