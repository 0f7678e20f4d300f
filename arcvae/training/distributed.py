"""Data-parallel training with PyTorch's own engine: `torchrun` + DistributedDataParallel.

Launched by torchrun (WORLD_SIZE/RANK/LOCAL_RANK set), each process trains on its own share of
every global batch; gradients are averaged by DDP, figures are summed across processes before
they are logged, and only rank 0 writes files. Without torchrun everything here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ArcVaeError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


ONE_PROCESS = World()  # a run not launched by torchrun


def init_world(device_name: str) -> World:
    """Join the process group torchrun set up (nccl on CUDA, gloo on CPU); World() when not launched
    so."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(world.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return world


def device_for(world: World, device: torch.device) -> torch.device:
    """Each process its own GPU; CPU processes share the CPU."""
    return (
        torch.device("cuda", world.local_rank) if device.type == "cuda" and world.active else device
    )


def sum_across(tensors: dict[str, torch.Tensor], world: World) -> dict[str, torch.Tensor]:
    """Sum every tensor over all processes, in place (figures are sums, so this is the
    reduction)."""
    if world.active:
        for value in tensors.values():
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return tensors


def mean_across(value: torch.Tensor, world: World) -> torch.Tensor:
    if not world.active:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / world.size


def any_across(flag: bool, world: World, device: torch.device) -> bool:
    """True on every process if it is true on any (a stop request must be agreed, or collectives
    hang)."""
    if not world.active:
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def broadcast_from_main(tensor: torch.Tensor, world: World) -> torch.Tensor:
    if world.active:
        dist.broadcast(tensor, src=0)
    return tensor


def barrier(world: World) -> None:
    if world.active:
        dist.barrier()


def shutdown(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ArcVaeError("train.device: 'cuda' was asked for but no CUDA device is available")
    return torch.device(name)
