"""Training throughput: our trainer step against a conventional VAE training loop, on one device.

    python bench/throughput.py                    # CPU: about a minute
    python bench/throughput.py --device cuda      # GPU: bf16 + optional --compile
    python bench/throughput.py --scaling          # step time and memory vs batch, grid and latent size

(a) ours: grids resident on the device as uint8, batches indexed and augmented there, fused
AdamW with the NaN skip on device, bf16 autocast on CUDA, figures summed on the device.
(b) baseline, written the way most VAE code is: a torch DataLoader over per-sample tensors,
augmentation and one-hot encoding per sample on the host, fp32, plain Adam, `loss.item()` every step.
Both train the same model on the same grids with the same batch size and loss.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from arcvae.batches import epoch_indices, batch_generator  # noqa: E402
from arcvae.config_io import load_config  # noqa: E402
from arcvae.data import load_datasets  # noqa: E402
from arcvae.model import build_model  # noqa: E402
from arcvae.steps import add_running, make_batch, make_optimizer, train_step, new_running  # noqa: E402
from arcvae.losses import LossOptions, elbo  # noqa: E402

PEAK_FLOPS = {"cuda-bf16": 989e12, "cuda-fp32": 67e12}  # H100 SXM dense: bf16 989 TFLOP/s, fp32 67 TFLOP/s


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class PerSampleGrids(Dataset):
    """The conventional dataset: one grid at a time, augmented and one-hot encoded in numpy on the host."""

    def __init__(self, pixels: np.ndarray, sizes: np.ndarray, seed: int):
        self.pixels, self.sizes, self.rng = pixels, sizes, np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, i: int) -> torch.Tensor:
        h, w = self.sizes[i]
        grid = self.pixels[i, :h, :w]
        grid = np.rot90(grid, self.rng.integers(4))
        if self.rng.integers(2):
            grid = np.fliplr(grid)
        perm = np.concatenate([[0], self.rng.permutation(9) + 1])
        padded = np.zeros_like(self.pixels[i])
        padded[: grid.shape[0], : grid.shape[1]] = perm[grid]
        return torch.from_numpy(np.eye(10, dtype=np.float32)[padded]).permute(2, 0, 1)  # (10, S, S) one-hot


def time_steps(steps: dict, n_steps: int, repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds per step of each loop, `repeats` timed runs of `n_steps` after one warm-up run each.

    The loops take turns within each repeat, so drift in the machine's speed hits all of them alike.
    """
    for step in steps.values():
        step(n_steps)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            sync(device)
            start = time.perf_counter()
            step(n_steps)
            sync(device)
            times[name].append((time.perf_counter() - start) / n_steps)
    return times


def ours(cfg, train, device, with_metrics: bool):
    """Our step loop; with_metrics adds the per-step running sums the trainer keeps for its logs."""
    net = build_model(cfg).to(device)
    model = torch.compile(net) if cfg.train.compile else net
    optimizer = make_optimizer(net, cfg, cfg.train.lr)
    options = LossOptions.from_config(cfg.loss, torch.ones(10, device=device))
    order = epoch_indices(len(train), 10 ** 6, batch_generator(0, 0, 0, device), device)
    state = {"b": 0, "running": new_running(cfg.model.latent_dim, device)}

    def step(n: int) -> None:
        for _ in range(n):
            batch = make_batch(train, order, cfg, 0, state["b"] % 5000)
            parts, _, finite = train_step(model, optimizer, batch, 0.1, options, cfg, device)
            if with_metrics:
                add_running(state["running"], parts, finite)
            state["b"] += 1
    return step, net, optimizer, options


def baseline(cfg, train, device):
    net = build_model(cfg).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.train.lr)
    dataset = PerSampleGrids(train.pixels.cpu().numpy(), train.sizes.cpu().numpy(), seed=0)
    loader = DataLoader(dataset, batch_size=cfg.train.batch_size, shuffle=True, drop_last=True, num_workers=0)
    options = LossOptions.from_config(cfg.loss, torch.ones(10, device=device))
    batches = iter(loader)

    def step(n: int) -> None:
        nonlocal batches
        for _ in range(n):
            try:
                onehot = next(batches)
            except StopIteration:
                batches = iter(loader)
                onehot = next(batches)
            grids = onehot.to(device).argmax(1)  # the same model takes colour indices
            out = net(grids)
            loss = elbo(out.logits, grids, out.mu, out.logvar, 0.1, options).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # the usual per-step logging sync
    return step


def flops_per_sample(net, cfg, device) -> float:
    """Forward + backward FLOPs of one training step, per sample (FlopCounterMode)."""
    batch = torch.randint(0, 10, (cfg.train.batch_size, cfg.data.grid_size, cfg.data.grid_size), device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        out = net(batch)
        elbo(out.logits, batch, out.mu, out.logvar, 0.1).loss.backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / cfg.train.batch_size


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def compare(cfg, args, device) -> None:
    train, _ = load_datasets(cfg.data)
    train = train.to(device)
    precision = "bf16" if (cfg.train.precision == "bf16" or (cfg.train.precision == "auto" and device.type == "cuda")) else "fp32"
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else f'{torch.get_num_threads()} CPU threads'}), "
          f"torch {torch.__version__}, batch {cfg.train.batch_size}, grid {cfg.data.grid_size}, "
          f"latent {cfg.model.latent_dim}, channels {cfg.model.channels}, ours in {precision}"
          f"{' + compile' if cfg.train.compile else ''}; {args.steps} steps x {args.repeats} repeats, median")
    step_ours, net, _, _ = ours(cfg, train, device, with_metrics=True)
    step_bare, _, _, _ = ours(cfg, train, device, with_metrics=False)
    times = time_steps({"ours": step_ours, "bare": step_bare, "baseline": baseline(cfg, train, device)},
                       args.steps, args.repeats, device)
    t_ours, t_bare, t_base = (statistics.median(times[k]) for k in ("ours", "bare", "baseline"))
    spread = max(max(v) - min(v) for v in times.values())
    B = cfg.train.batch_size
    flops = flops_per_sample(net, cfg, device)
    rate_ours, rate_base = B / t_ours, B / t_base
    print(f"ours      {rate_ours:10.0f} samples/s  ({1e3 * t_ours:.2f} ms/step)")
    print(f"baseline  {rate_base:10.0f} samples/s  ({1e3 * t_base:.2f} ms/step)")
    print(f"ratio     {rate_ours / rate_base:10.2f}x")
    print(f"metrics   {1e3 * (t_ours - t_bare):+.2f} ms/step ({100 * (t_ours - t_bare) / t_bare:+.1f}%) for the running sums "
          f"(repeat-to-repeat spread {1e3 * spread:.2f} ms/step)")
    achieved = flops * rate_ours
    peak = PEAK_FLOPS.get(f"{device.type}-{precision}")
    mfu = f"{100 * achieved / peak:.2f}% of {peak / 1e12:.0f} TFLOP/s ({device.type} {precision} peak, H100 SXM)" if peak else "n/a (no peak figure for this device)"
    print(f"FLOPs     {flops / 1e6:.1f} MFLOP/sample (fwd+bwd); achieved {achieved / 1e9:.1f} GFLOP/s; MFU {mfu}")
    print(f"memory    peak {peak_memory_mb(device):.0f} MB ({'CUDA allocated' if device.type == 'cuda' else 'process RSS'})")
    epoch_s = cfg.data.samples_per_epoch / rate_ours
    print(f"epoch     {cfg.data.samples_per_epoch} samples in {epoch_s:.1f} s at this rate")


def scaling(cfg, args, device) -> None:
    """Step time and memory as batch, grid and latent size grow (measured points, one knob at a time)."""
    train_full, _ = load_datasets(cfg.data)
    print("knob         value   ms/step   samples/s   peak MB")
    base = dict(batch=cfg.train.batch_size, grid=cfg.data.grid_size, latent=cfg.model.latent_dim)
    knobs = [("batch", [32, 64, 128, 256]), ("grid", [10, 16, 24, 30]), ("latent", [16, 64, 256])]
    for knob, values in knobs:
        for value in values:
            point = {**base, knob: value}
            c = load_config(args.config, [*args.overrides, f"train.batch_size={point['batch']}",
                                          f"data.grid_size={point['grid']}", f"model.latent_dim={point['latent']}"])
            train, _ = load_datasets(c.data) if point["grid"] != cfg.data.grid_size else (train_full, None)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            step, _, _, _ = ours(c, train.to(device), device, with_metrics=True)
            t = statistics.median(time_steps({"ours": step}, args.steps, args.repeats, device)["ours"])
            # A process's peak RSS never goes down, so per-point memory is only measurable on CUDA.
            memory = f"{peak_memory_mb(device):9.0f}" if device.type == "cuda" else "        -"
            print(f"{knob:<10} {value:>7} {1e3 * t:9.2f} {point['batch'] / t:11.0f} {memory}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("overrides", nargs="*", help="config overrides, as for train_vae.py")
    p.add_argument("--config", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=None, help="steps per timed repeat (default: 5 on CPU, 50 on GPU)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true", help="torch.compile our model")
    p.add_argument("--scaling", action="store_true", help="measure how step time grows instead")
    args = p.parse_args()
    cfg = load_config(args.config, [*args.overrides, f"train.device={args.device}", "data.val_source=none",
                                    f"train.compile={str(args.compile).lower()}"])
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    args.steps = args.steps or (50 if device.type == "cuda" else 5)
    torch.manual_seed(0)
    (scaling if args.scaling else compare)(cfg, args, device)


if __name__ == "__main__":
    main()
