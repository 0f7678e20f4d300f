"""Typed configuration: the dataclass schema, its choices and ranges, and the checks run after a
merge.

Loading (YAML file, dotted overrides, unknown-key errors) lives in `config_io`.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


@dataclass
class DataConfig:
    source: str = "arc1"
    split: str = "training"
    val_source: str | None = None
    val_split: str = "evaluation"
    val_limit: int = 0
    val_fraction: float = 0.1
    atoms_train: int = 80_000
    atoms_val: int = 10_000
    grid_size: int = 30
    padding: str = "symbol"
    bucket_multiple: int = 4
    samples_per_epoch: int = 800_000
    augment: bool = True
    cache_dir: str | None = "~/.cache/arcvae"


@dataclass
class ModelConfig:
    arch: str = "patch"
    latent_dim: int | None = None  # null: the architecture's default (ARCH_DEFAULTS)
    embed_dim: int = 16
    channels: list[int] = field(default_factory=lambda: [64, 128])
    blocks: int = 0
    hidden: int = 0
    cell_dims: int | None = None  # null: the architecture's default (ARCH_DEFAULTS)
    slots: int = 6  # slots: one slot of named dims per object
    shape_dims: int = 16  # slots: the shape code's dims in each slot
    connectivity: int = 4  # slots: what an object is, a 4- or 8-connected single-colour component
    shape_encoder: list[int] = field(default_factory=lambda: [256, 256])  # slots: MLP widths
    shape_decoder: list[int] = field(default_factory=lambda: [512, 512, 512])


@dataclass
class LossConfig:
    recon: str = "ce"
    reduction: str = "sum"
    focal_gamma: float = 2.0
    class_weights: str = "inverse_sqrt"
    effective_beta: float = 0.9999
    max_weight_ratio: float = 0.0
    free_bits: float = 0.1
    free_bits_mode: str = "batch"


@dataclass
class BetaConfig:
    schedule: str = "linear_warmup"
    max_beta: float | None = None
    min_beta: float = 0.0
    warmup_epochs: float | None = None
    ramp_epochs: float | None = None
    n_cycles: int = 4
    ratio: float = 0.5
    shape: str = "linear"
    target_kl_per_dim: float = 0.5
    kp: float = 0.1
    ki: float = 0.002


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1.5e-3
    lr_schedule: str = "cosine"
    lr_floor: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    threads: int | str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    log_every: int = 50
    eval_every: int = 1
    checkpoint_every: int = 1
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 2
    max_bad_steps: int = 10
    stop_on_collapse: bool = False
    progress: bool = True


@dataclass
class OverfitConfig:
    batch_size: int = 32
    iterations: int = 500
    target_accuracy: float = 0.95
    min_class_recall: float = 0.80
    stop_at_target: bool = True
    lr: float = 3e-3
    warmup_iterations: int = 10
    decay_iterations: int = 200
    beta: float = 0.0
    log_every: int = 25


@dataclass
class MonitorConfig:
    kl_floor: float = 0.05
    non_black_floor: float = 0.30
    rate_floor_bits: float = 0.0  # rate_bits (the true KL, bits a grid) under it = collapse; 0: off
    active_threshold: float = 0.01
    n_recon_grids: int = 8
    wandb: bool = False
    wandb_project: str = "arcvae"


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    beta: BetaConfig = field(default_factory=BetaConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    overfit: OverfitConfig = field(default_factory=OverfitConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)


# Per-schedule defaults for the β keys left null in the config (issue: ultra_conservative is
# 20/60/0.1).
SCHEDULE_DEFAULTS = {
    "constant": dict(max_beta=0.1, warmup_epochs=0.0, ramp_epochs=0.0),
    "linear_warmup": dict(max_beta=0.5, warmup_epochs=1.0, ramp_epochs=2.0),
    "ultra_conservative": dict(max_beta=0.1, warmup_epochs=20.0, ramp_epochs=60.0),
    "cyclical": dict(max_beta=0.5, warmup_epochs=0.0, ramp_epochs=0.0),
    "adaptive": dict(max_beta=0.5, warmup_epochs=0.0, ramp_epochs=0.0),
}

# Per-architecture defaults for the model keys left null: the global vector's size, and the dims
# of each 2×2-pixel cell, which only `patch` has.
SLOT_PARTS = 6  # slots: presence, row, col, height, width, colour; then the shape code

ARCH_DEFAULTS = {
    "conv": dict(latent_dim=256, cell_dims=0),
    "conv_any": dict(latent_dim=256, cell_dims=0),
    "resnet": dict(latent_dim=256, cell_dims=0),
    "patch": dict(latent_dim=32, cell_dims=8),
    "slots": dict(latent_dim=0, cell_dims=0),  # its D is model.slots x (6 + model.shape_dims)
}

CHOICES = {
    "data.split": ("training", "evaluation"),
    "data.val_split": ("training", "evaluation"),
    "data.padding": ("black", "symbol"),
    "model.arch": tuple(ARCH_DEFAULTS),
    "loss.recon": ("ce", "weighted_ce", "focal"),
    "loss.reduction": ("sum", "mean"),
    "loss.class_weights": ("none", "inverse", "inverse_sqrt", "effective_number"),
    "loss.free_bits_mode": ("batch", "sample"),
    "beta.schedule": tuple(SCHEDULE_DEFAULTS),
    "beta.shape": ("linear", "cosine", "sigmoid"),
    "train.device": ("auto", "cpu", "cuda"),
    "train.threads": ("auto",),  # or a number: RANGES
    "train.precision": ("auto", "fp32", "bf16"),
    "train.lr_schedule": ("constant", "cosine"),
}

# (key, lowest, highest, lowest allowed itself?) - checked after the merge.
RANGES = [
    ("data.grid_size", 1, 30, True),
    ("data.bucket_multiple", 1, None, True),
    ("data.samples_per_epoch", 1, None, True),
    ("data.val_limit", 0, None, True),
    ("data.val_fraction", 0, 1, True),  # and below 1: validate() checks
    ("data.atoms_train", 1, None, True),
    ("data.atoms_val", 1, None, True),
    ("model.latent_dim", 0, None, True),
    ("model.embed_dim", 1, None, True),
    ("model.blocks", 0, None, True),
    ("model.cell_dims", 0, None, True),
    ("model.hidden", 0, None, True),
    ("model.slots", 1, None, True),
    ("model.shape_dims", 1, None, True),
    ("loss.focal_gamma", 0, None, True),
    ("loss.effective_beta", 0, 1, False),
    ("loss.max_weight_ratio", 0, None, True),
    ("loss.free_bits", 0, None, True),
    ("beta.max_beta", 0, None, True),
    ("beta.min_beta", 0, None, True),
    ("beta.warmup_epochs", 0, None, True),
    ("beta.ramp_epochs", 0, None, True),
    ("beta.n_cycles", 1, None, True),
    ("beta.ratio", 0, 1, False),
    ("beta.target_kl_per_dim", 0, None, True),
    ("beta.kp", 0, None, True),
    ("beta.ki", 0, None, True),
    ("train.epochs", 1, None, True),
    ("train.batch_size", 1, None, True),
    ("train.lr", 0, None, False),
    ("train.lr_floor", 0, 1, True),
    ("train.weight_decay", 0, None, True),
    ("train.grad_clip", 0, None, True),
    ("train.seed", 0, 2**32 - 1, True),  # numpy's seed range; outside it the run crashed at start
    ("train.threads", 1, None, True),  # or a word: CHOICES
    ("train.log_every", 1, None, True),
    ("train.eval_every", 1, None, True),
    ("train.checkpoint_every", 1, None, True),
    ("train.checkpoint_every_steps", 0, None, True),
    ("train.keep_checkpoints", 1, None, True),
    ("train.max_bad_steps", 1, None, True),
    ("overfit.batch_size", 1, None, True),
    ("overfit.iterations", 1, None, True),
    ("overfit.target_accuracy", 0, 1, True),
    ("overfit.min_class_recall", 0, 1, True),
    ("overfit.lr", 0, None, False),
    ("overfit.warmup_iterations", 0, None, True),
    ("overfit.decay_iterations", 0, None, True),
    ("overfit.beta", 0, None, True),
    ("overfit.log_every", 1, None, True),
    ("monitor.kl_floor", 0, None, True),
    ("monitor.non_black_floor", 0, 1, True),
    ("monitor.rate_floor_bits", 0, None, True),
    ("monitor.active_threshold", 0, None, True),
    ("monitor.n_recon_grids", 0, None, True),
]

# Keys that take one of their CHOICES or a number in their RANGES row (train.threads: auto or N).
WORD_OR_NUMBER = CHOICES.keys() & {key for key, *_ in RANGES}


def resolve_defaults(cfg: Config) -> None:
    """Fill the β keys left null with the chosen schedule's defaults and the model keys left null
    with the architecture's, so config.yaml shows real values."""
    for section, defaults in (
        (cfg.beta, SCHEDULE_DEFAULTS.get(cfg.beta.schedule, {})),
        (cfg.model, ARCH_DEFAULTS.get(cfg.model.arch, {})),
    ):
        for key, value in defaults.items():
            if getattr(section, key) is None:
                setattr(section, key, value)


def get_key(cfg: Config, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def validate(cfg: Config) -> None:
    for key, choices in CHOICES.items():
        value = get_key(cfg, key)
        if key in WORD_OR_NUMBER and not isinstance(value, str):
            continue  # a number: its range is checked below
        if value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            options = (
                f"{' or '.join(choices)} or a whole number"
                if key in WORD_OR_NUMBER
                else f"one of {', '.join(choices)}"
            )
            raise ConfigError(f"{key}: unknown value '{value}'{hint}; choose {options}")
    for key, low, high, low_ok in RANGES:
        value = get_key(cfg, key)
        if value is None or isinstance(value, str):  # a word: checked against CHOICES above
            continue
        # YAML reads .nan and .inf as floats, which compare as in range
        if not math.isfinite(value):
            raise ConfigError(f"{key}: {value} is not a finite number")
        if value < low or (value == low and not low_ok) or (high is not None and value > high):
            bound = f">= {low}" if low_ok else f"> {low}"
            if high is not None:
                bound += f" and <= {high}"
            raise ConfigError(f"{key}: {value} is out of range (must be {bound})")
    if cfg.data.val_fraction == 1:
        raise ConfigError("data.val_fraction: 1.0 is out of range (must be >= 0 and < 1)")
    check_arch_padding(cfg.model.arch, cfg.data.padding)
    if not cfg.model.channels or any(c < 1 for c in cfg.model.channels):
        raise ConfigError(
            f"model.channels: {cfg.model.channels} must be a non-empty list of positive ints"
        )
    check_cells(cfg)
    if 0 < cfg.loss.max_weight_ratio < 1:
        raise ConfigError(
            f"loss.max_weight_ratio: {cfg.loss.max_weight_ratio} must be 0 (no cap) or >= 1"
        )
    if cfg.beta.min_beta > cfg.beta.max_beta:
        raise ConfigError(
            f"beta.min_beta: {cfg.beta.min_beta} is above beta.max_beta {cfg.beta.max_beta}"
        )


def check_arch_padding(arch: str, padding: str) -> None:
    """`conv` reads its bottleneck through a linear layer tied to one canvas: it cannot take size
    buckets."""
    if arch == "conv" and padding == "symbol":
        raise ConfigError(
            "model.arch=conv cannot be used with data.padding=symbol (its linear bottleneck is "
            "tied to one canvas, and symbol mode uses size buckets); use model.arch=conv_any"
        )
    if arch == "slots" and padding == "symbol":
        raise ConfigError(
            "model.arch=slots cannot be used with data.padding=symbol (its objects are the "
            "components of a black canvas); use data.padding=black"
        )


def check_cells(cfg: Config) -> None:
    """model.cell_dims: dims for each 2×2-pixel cell of patch's half-resolution map."""
    if cfg.model.cell_dims and cfg.model.arch != "patch":
        raise ConfigError(
            f"model.cell_dims: {cfg.model.cell_dims} needs model.arch=patch (its cells live on the "
            "half-resolution map); model.cell_dims=0 gives one global vector"
        )
    if (
        cfg.model.latent_dim == 0
        and cfg.model.arch != "slots"
        and not (cfg.model.arch == "patch" and cfg.model.cell_dims)
    ):
        raise ConfigError(
            "model.latent_dim: 0 (no global vector) needs model.arch=patch with model.cell_dims "
            ">= 1, the cells then being the whole latent"
        )
    if cfg.model.latent_dim == 0 and cfg.data.padding == "symbol":
        raise ConfigError(
            "model.latent_dim: 0 needs data.padding=black: in symbol mode the shape head reads "
            "the global vector"
        )
    if cfg.model.hidden and cfg.model.arch == "conv":
        raise ConfigError(
            f"model.hidden: {cfg.model.hidden} needs an any-canvas model.arch (patch, conv_any, "
            "resnet); conv's bottleneck is one linear layer"
        )
    if cfg.model.connectivity not in (4, 8):
        raise ConfigError(
            f"model.connectivity: {cfg.model.connectivity} must be 4 (objects meet only along an "
            "edge) or 8 (pixels that touch at a corner are one object)"
        )
    for key in ("shape_encoder", "shape_decoder"):
        widths = getattr(cfg.model, key)
        if not widths or any(w < 1 for w in widths):
            raise ConfigError(f"model.{key}: {widths} must be a non-empty list of positive ints")
    if cfg.model.arch == "patch" and len(cfg.model.channels) < 2:
        raise ConfigError(
            f"model.channels: {cfg.model.channels} must hold two or more widths with "
            "model.arch=patch (its first level is the 2x2 patches)"
        )


def latent_size(model: ModelConfig, grid_size: int) -> int:
    """D, the dimensions of z: the global vector, then `cell_dims` for each 2×2-pixel cell of the
    largest canvas's half-resolution map."""
    if model.arch == "slots":
        return model.slots * (SLOT_PARTS + model.shape_dims)
    cells = (grid_size + 1) // 2
    return model.latent_dim + (model.cell_dims or 0) * cells * cells
