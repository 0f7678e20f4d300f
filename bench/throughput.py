"""Training throughput and what it buys: today's path against the new default, side by side in one
run.

    python bench/throughput.py                        # speed, then quality after the same samples
    python bench/throughput.py --quality-samples 0    # speed only
    python bench/throughput.py --device cuda

Both paths are the trainer's own code (`run.set_up`, `batches.epoch_plan`, `make_batch`,
`train_step`, the running sums) on all of ARC-AGI-1 training (3,434 grids up to 30×30), each as a
user runs it:
- today: `conv`, every grid padded black to 30×30, fp32, contiguous layout, batch 128 (`--baseline`
  of bench/speedrun.py);
- new: the default recipe: `patch`, padding as its own symbol, each batch on its size bucket's
  canvas, bf16 autocast where the device has it natively (`train.precision: auto`), channels_last
  there, batch 256.

Speed: samples/s over windows of consecutive batches of each path's epoch plan (so the new path's
mix of canvases is the real one), the paths taking turns so drift hits both alike; the median
window. FLOPs per step are counted by FlopCounterMode (forward + backward, per canvas). The CPU's
peak is cores × FLOP per cycle × clock, with two FMA units a core of `--fma-bits` each (an FMA is
2 FLOP per lane; bf16 dot products such as VDPBF16PS do twice the fp32 lanes): at the defaults,
256-bit FMAs at 2.6 GHz, that is 32 fp32 / 64 bf16 FLOP per cycle a core. Set `--fma-bits`, `--ghz`
and `--cores` to the machine's: the share of peak is only as good as these three numbers.

Quality: each path then trains `--quality-samples` samples with the real trainer (1 epoch warm-up,
2 of ramp to β = 0.5, free bits 0.3, the rest of the config default) and is evaluated on all
ARC-AGI-1 evaluation grids, so speed is not bought with worse learning. The last line is `ratio:
N.NN` (new over today, samples/s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from speedrun import BASELINE  # noqa: E402  (bench/ is the script's folder, so on sys.path)

from arcvae.config_io import load_config
from arcvae.data.batches import epoch_plan, make_batch
from arcvae.training.losses import elbo
from arcvae.training.run import set_up
from arcvae.training.steps import add_running, make_optimizer, new_running, train_step
from arcvae.training.trainer import train

PATHS = {
    # the network before the size-aware work and issue 13's recipe (bench/speedrun.py)
    "today": BASELINE,
    # the default recipe: patch, symbol padding and size buckets, bf16 where native, batch 256
    "new": [],
}
# The quality runs: a short schedule that reaches β = 0.5 within the few epochs they get.
QUALITY = [
    "beta.schedule=linear_warmup",
    "beta.warmup_epochs=1",
    "beta.ramp_epochs=2",
    "beta.max_beta=0.5",
    "loss.free_bits=0.3",
    "train.progress=false",
    "monitor.n_recon_grids=0",
]
FMA_UNITS = 2  # FMA units a core, each of --fma-bits


def flop_per_cycle(precision: str, fma_bits: int) -> int:
    """Peak FLOP a core issues per cycle: FMA units × fp32 lanes × 2 (multiply and add), twice that
    in bf16 (a bf16 dot product fills each fp32 lane with two products)."""
    fp32 = FMA_UNITS * (fma_bits // 32) * 2
    return fp32 * (2 if precision == "bf16" else 1)


CUDA_PEAK = {"fp32": 67e12, "bf16": 989e12}  # H100 SXM dense


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class TrainerPath:
    """One path's set-up and a cursor into its epoch plan; `run(n)` takes the next n training
    steps."""

    def __init__(self, name: str, cfg, n_batches: int):
        self.name = name
        self.cfg = cfg
        self.setup = set_up(cfg)
        self.device = self.setup.device
        self.train = self.setup.train.to(self.device)
        self.optimizer = make_optimizer(self.setup.net, cfg.train.weight_decay, cfg.train.lr)
        self.plan = epoch_plan(self.train, cfg, 0, n_batches)
        self.running = new_running(self.setup.net.latent_dim, self.device)
        self.precision = "bf16" if self.setup.precision.bf16 else "fp32"
        self.next = 0
        self.samples = []
        self.flops = []
        self.seconds = []
        self.flops_per_sample = {
            canvas: self.count_flops(b) for b, canvas in self.first_of_each_canvas().items()
        }

    def first_of_each_canvas(self) -> dict[int, int]:
        """Plan entry -> canvas, for the first batch of each canvas the plan holds."""
        first: dict[int, int] = {}
        for b, (canvas, _) in enumerate(self.plan):
            if canvas not in first.values():
                first[b] = canvas
        return first

    def count_flops(self, b: int) -> float:
        """FLOPs per sample of a forward + backward on plan entry b's canvas (FlopCounterMode)."""
        batch = make_batch(self.train, self.plan, self.cfg, 0, b)
        counter = FlopCounterMode(display=False)
        with counter:
            with self.setup.precision.autocast():
                out = self.setup.net(batch.grids)
            elbo(out, batch.grids, batch.sizes, 0.1, self.setup.options).loss.backward()
        self.setup.net.zero_grad(set_to_none=True)
        return counter.get_total_flops() / len(batch.grids)

    def run(self, n: int) -> tuple[int, float]:
        """The next n training steps of the plan (wrapping around); returns their (samples,
        FLOPs)."""
        samples = flops = 0
        for _ in range(n):
            batch = make_batch(self.train, self.plan, self.cfg, 0, self.next % len(self.plan))
            parts, _, finite = train_step(
                self.setup.net,
                self.optimizer,
                batch,
                0.1,
                self.setup.options,
                self.setup.precision,
                self.cfg.train.grad_clip,
            )
            add_running(self.running, parts, finite)
            samples += len(batch.grids)
            flops += self.flops_per_sample[batch.grids.shape[-1]] * len(batch.grids)
            self.next += 1
        return samples, flops

    def timed(self, n: int) -> None:
        sync(self.device)
        start = time.perf_counter()
        samples, flops = self.run(n)
        sync(self.device)
        self.seconds.append(time.perf_counter() - start)
        self.samples.append(samples)
        self.flops.append(flops)

    def rate(self) -> float:
        return statistics.median(s / t for s, t in zip(self.samples, self.seconds))

    def flop_rate(self) -> float:
        return statistics.median(f / t for f, t in zip(self.flops, self.seconds))


def peak_flops(device: torch.device, precision: str, args) -> tuple[float, str]:
    if device.type == "cuda":
        return CUDA_PEAK[precision], f"H100 SXM dense {precision}"
    cores = args.cores or torch.get_num_threads()
    per_cycle = flop_per_cycle(precision, args.fma_bits)
    return (
        cores * per_cycle * args.ghz * 1e9,
        f"{cores} cores × {per_cycle} {precision} FLOP/cycle × {args.ghz} GHz",
    )


def measure_speed(paths: dict[str, TrainerPath], args) -> None:
    """Windows of `--window-samples` samples per path, taking turns; one warm-up window each."""
    for path in paths.values():
        path.run(2)  # warm-up: allocator and first-call overheads
    for _ in range(args.repeats):
        for path in paths.values():
            path.timed(max(1, args.window_samples // path.cfg.train.batch_size))


def report_speed(paths: dict[str, TrainerPath], args) -> None:
    print(
        f"\n{'path':<6} {'samples/s':>10} {'ms/step':>8} {'spread':>7} {'GFLOP/s':>8} "
        f"{'MFLOP/sample':>13}  share of peak"
    )
    for path in paths.values():
        rate = path.rate()
        flop_rate = path.flop_rate()
        spread = (
            max(s / t for s, t in zip(path.samples, path.seconds))
            - min(s / t for s, t in zip(path.samples, path.seconds))
        ) / rate
        peak, how = peak_flops(path.device, path.precision, args)
        per_sample = sum(path.flops) / sum(path.samples)
        print(
            f"{path.name:<6} {rate:10.0f} {1e3 * path.cfg.train.batch_size / rate:8.1f} "
            f"{100 * spread:6.0f}% {flop_rate / 1e9:8.1f} {per_sample / 1e6:13.1f}  "
            f"{100 * flop_rate / peak:5.1f}% of {peak / 1e9:.0f} GFLOP/s ({how})"
        )


def measure_quality(name: str, overrides: list[str], args) -> dict:
    """Train `--quality-samples` samples with the real trainer; the summary's final validation
    figures."""
    epochs = 4
    cfg = load_config(
        args.config,
        [
            *args.overrides,
            *overrides,
            *QUALITY,
            f"train.device={args.device}",
            f"train.epochs={epochs}",
            f"data.samples_per_epoch={args.quality_samples // epochs}",
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = train(cfg, Path(tmp) / name)
        seconds = time.perf_counter() - start
    final = summary["final"]
    return {
        "seconds": seconds,
        **{
            k: final[k]
            for k in (
                "non_black_accuracy",
                "pixel_accuracy",
                "grid_accuracy",
                "active_units",
                "kl_dim_mean",
            )
        },
    }


def report_quality(results: dict[str, dict], args) -> None:
    limit = load_config(args.config, args.overrides).data.val_limit
    grids = f"first {limit} grids" if limit else "every grid"
    print(
        f"\nquality after {args.quality_samples} samples each (ARC-AGI-1 evaluation, {grids}; β 0 "
        "→ 0.5 over epochs 1-3 of 4, free bits 0.3):"
    )
    print(
        f"{'path':<6} {'wall s':>7} {'non-black':>10} {'pixels':>7} {'exact':>6} {'active':>7} "
        f"{'KL/dim':>7}"
    )
    for name, r in results.items():
        print(
            f"{name:<6} {r['seconds']:7.0f} {100 * r['non_black_accuracy']:9.1f}% "
            f"{100 * r['pixel_accuracy']:6.1f}% {100 * r['grid_accuracy']:5.1f}% "
            f"{r['active_units']:7d} {r['kl_dim_mean']:7.2f}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "overrides", nargs="*", help="config overrides for both paths, as for train_vae.py"
    )
    p.add_argument("--config", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--window-samples", type=int, default=4096, help="samples per timed window (default 4096)"
    )
    p.add_argument("--repeats", type=int, default=3, help="timed windows per path (median)")
    p.add_argument(
        "--quality-samples",
        type=int,
        default=32768,
        help="samples trained per path for quality (0: skip)",
    )
    p.add_argument("--ghz", type=float, default=2.6, help="CPU clock for the peak (default 2.6)")
    p.add_argument(
        "--fma-bits",
        type=int,
        choices=[128, 256, 512],
        default=256,
        help="width of each of a core's two FMA units, for the peak (default 256)",
    )
    p.add_argument(
        "--cores", type=int, default=0, help="cores for the peak (default: torch's thread count)"
    )
    args = p.parse_args()
    torch.manual_seed(0)
    paths = {}
    for name, overrides in PATHS.items():
        cfg = load_config(
            args.config,
            [*args.overrides, *overrides, f"train.device={args.device}", "data.val_source=none"],
        )
        n_batches = max(1, cfg.data.samples_per_epoch // cfg.train.batch_size)
        paths[name] = TrainerPath(name, cfg, n_batches)
    device = paths["today"].device
    if device.type == "cuda":
        where = torch.cuda.get_device_name()
    else:
        where = f"{torch.get_num_threads()} CPU threads"
    batches = " / ".join(str(p.cfg.train.batch_size) for p in paths.values())
    print(
        f"\ndevice {device} ({where}), torch {torch.__version__}, batch {batches}, "
        f"{len(paths['today'].train)} grids; {args.repeats} windows of {args.window_samples} "
        "samples per path, median"
    )
    for path in paths.values():
        recipe = " ".join(PATHS[path.name]) or "the default recipe"
        print(f"  {path.name:<6} {recipe}  ({path.precision})")
    measure_speed(paths, args)
    report_speed(paths, args)
    if args.quality_samples:
        report_quality(
            {name: measure_quality(name, overrides, args) for name, overrides in PATHS.items()},
            args,
        )
    print(f"\nratio: {paths['new'].rate() / paths['today'].rate():.2f}")


if __name__ == "__main__":
    main()
