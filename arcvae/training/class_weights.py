"""Class weights from the whole training set (never one batch), cached on disk as JSON.

Counted on what the loss sees: in black mode (`data.padding: black`) the padded canvases, padding
included; in symbol mode only each grid's own pixels (the padding is not a pixel there). When
augmentation is on, colours 1-9 are permuted uniformly at random, so each non-black colour's
expected share is the mean of theirs: the weights use that exact expectation instead of the raw
per-colour counts (which would, say, over-weight brown although augmented batches hold as much brown
as blue). Black stays black.

Methods: inverse (1/f), inverse_sqrt (1/√f), effective_number (Cui et al. 2019,
https://arxiv.org/abs/1901.05555: (1-β)/(1-β^n)). Normalised so the pixel-weighted mean weight is 1;
`max_ratio` > 0 caps max/min by raising the smallest weights.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..canvas import N_COLOURS, Padding
from ..data.grids import Grids
from ..files import write_text_atomic

CACHE_VERSION = 2  # 2: the key holds the padding mode and the grids' sizes


@dataclass
class ClassWeights:
    weights: list[float]  # one per colour
    counts: list[float]  # pixel counts the weights came from (expected counts if augmented)
    raw_counts: list[
        int
    ]  # pixel counts of the training grids (padded canvases in black mode, own pixels in symbol)
    method: str
    fingerprint: str
    source: str = "computed"  # "computed" or "cache"

    def tensor(self, device: torch.device | str) -> torch.Tensor:
        return torch.tensor(self.weights, dtype=torch.float32, device=device)


def pixel_counts(grids: Grids, padding: Padding = Padding.BLACK) -> torch.Tensor:
    """(10,) int64 pixel counts: over the padded canvases (black), or the grids' own pixels
    (symbol)."""
    pixels = grids.pixels
    counted = Padding(padding).counted(grids.sizes, pixels.shape[-1])
    if counted is not None:
        pixels = pixels[counted]
    return torch.bincount(pixels.flatten().long(), minlength=N_COLOURS).cpu()


def expected_counts(counts: torch.Tensor, colour_permutation: bool) -> torch.Tensor:
    """The counts the model trains on: non-black colours share their total evenly when permuted."""
    counts = counts.double()
    if colour_permutation:
        counts = torch.cat([counts[:1], counts[1:].mean().expand(N_COLOURS - 1)])
    return counts


def compute_weights(
    counts: torch.Tensor, method: str, effective_beta: float = 0.9999, max_ratio: float = 0.0
) -> torch.Tensor:
    """(10,) weights from (10,) counts; absent colours get the largest present weight."""
    counts = counts.double()
    present = counts > 0
    freq = counts / counts.sum()
    if method == "none":
        return torch.ones(N_COLOURS, dtype=torch.float64)
    if method == "inverse":
        raw = 1.0 / freq.clamp(min=1e-12)
    elif method == "inverse_sqrt":
        raw = freq.clamp(min=1e-12).rsqrt()
    elif method == "effective_number":
        raw = (1 - effective_beta) / (
            1 - torch.tensor(effective_beta, dtype=torch.float64).pow(counts)
        ).clamp(min=1e-12)
    else:
        raise ValueError(f"unknown class-weight method '{method}'")
    raw = torch.where(present, raw, raw[present].max())
    if max_ratio > 0:
        raw = raw.clamp(min=raw.max() / max_ratio)
    return raw / (freq * raw).sum()  # pixel-weighted mean 1


def fingerprint(
    grids: Grids,
    source: str,
    colour_permutation: bool,
    method: str,
    effective_beta: float,
    max_ratio: float,
    padding: Padding = Padding.BLACK,
) -> str:
    """Everything the weights depend on: the data's content (pixels and sizes), the padding mode,
    every parameter."""
    h = hashlib.sha256()
    h.update(grids.pixels.cpu().numpy().tobytes())
    h.update(grids.sizes.cpu().numpy().astype("<i8").tobytes())
    h.update(
        json.dumps(
            [
                CACHE_VERSION,
                source,
                list(grids.pixels.shape),
                colour_permutation,
                method,
                effective_beta,
                max_ratio,
                padding,
            ]
        ).encode()
    )
    return h.hexdigest()[:20]


def _read_cache(path: Path, key: str) -> ClassWeights | None:
    """The cached weights, or None with a warning when the file is unusable (never trusted
    blindly)."""
    try:
        entry = json.loads(path.read_text())
        weights = [float(w) for w in entry["weights"]]
        if (
            entry["fingerprint"] != key
            or len(weights) != N_COLOURS
            or not all(0 < w < math.inf for w in weights)
        ):
            raise ValueError("contents do not match")
        return ClassWeights(
            weights, entry["counts"], entry["raw_counts"], entry["method"], key, "cache"
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"warning: class-weight cache {path} is unusable ({exc}); recomputing")
        return None


def class_weights(
    grids: Grids,
    source: str,
    colour_permutation: bool,
    method: str,
    effective_beta: float,
    max_ratio: float,
    cache_dir: str | Path | None,
    recompute: bool = False,
    padding: Padding = Padding.BLACK,
) -> ClassWeights:
    """Load the weights for this data and these parameters from the cache, or compute and store
    them."""
    key = fingerprint(grids, source, colour_permutation, method, effective_beta, max_ratio, padding)
    path = Path(cache_dir).expanduser() / f"class_weights_{key}.json" if cache_dir else None
    if path is not None and path.exists() and not recompute:
        cached = _read_cache(path, key)
        if cached is not None:
            return cached
    raw = pixel_counts(grids, padding)
    counts = expected_counts(raw, colour_permutation)
    weights = compute_weights(counts, method, effective_beta, max_ratio)
    result = ClassWeights(
        [round(w, 6) for w in weights.tolist()], counts.tolist(), raw.tolist(), method, key
    )
    if path is not None:
        entry = {
            "fingerprint": key,
            "method": method,
            "effective_beta": effective_beta,
            "max_weight_ratio": max_ratio,
            "colour_permutation": colour_permutation,
            "source": source,
            "grid_shape": list(grids.pixels.shape),
            "padding": padding,
            "weights": result.weights,
            "counts": result.counts,
            "raw_counts": result.raw_counts,
        }
        write_text_atomic(path, json.dumps(entry, indent=2) + "\n")
    return result
