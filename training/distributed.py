"""Device choice and DistributedDataParallel set-up for training.

Run `torchrun --nproc_per_node=N -m training.train ...`: torchrun sets RANK, WORLD_SIZE and
LOCAL_RANK, and this module joins the process group (NCCL on CUDA, gloo on CPU). Without those
variables the script runs as a single process. Rank 0 logs and writes checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class Runtime:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """CUDA, then Apple MPS, then CPU (or the named one)."""
    if preference == "auto":
        if torch.cuda.is_available():
            preference = "cuda"
        elif torch.backends.mps.is_available():
            preference = "mps"
        else:
            preference = "cpu"
    if preference == "cuda":
        return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
    return torch.device(preference)


def init_runtime(preference: str = "auto") -> Runtime:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Runtime(rank, world_size, local_rank, device)


def any_across_ranks(runtime: Runtime, *flags: bool) -> list[bool]:
    """Each flag OR-ed over all processes, so that every rank takes the same decision."""
    if not runtime.distributed:
        return list(flags)
    values = torch.tensor([float(f) for f in flags], device=runtime.device)
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return [bool(v) for v in values.tolist()]


def gather_to_main(runtime: Runtime, obj: Any) -> list[Any] | None:
    """Every process's `obj` (picklable), in rank order, on rank 0; None on the others."""
    if not runtime.distributed:
        return [obj]
    gathered: list[Any] | None = [None] * runtime.world_size if runtime.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def barrier(runtime: Runtime) -> None:
    if runtime.distributed:
        dist.barrier()


def shutdown(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()
