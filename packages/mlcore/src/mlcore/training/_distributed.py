"""Distributed set-up for the trainer: the process group torchrun asks for, and agreeing across ranks."""

from __future__ import annotations

import os

import attrs
import torch


@attrs.define
class DistInfo:
    """Where this process sits in a ``torchrun`` launch (a single process: world size 1, rank 0)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        """Whether more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0)."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistInfo:
        """Read ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (set by torchrun)."""
        ws = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if ws <= 1:
            return cls()
        return cls(ws, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")))


def setup_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun (nccl on CUDA, gloo otherwise).

    Returns the rank information and the device this rank trains on (``cuda:<local_rank>`` on CUDA).
    """
    info = DistInfo.from_env()
    if not info.enabled:
        return info, device
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        info.initialized_here = True
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    return info, device


def teardown_distributed(info: DistInfo) -> None:
    """Wait for every rank, then leave the process group if :func:`setup_distributed` joined it."""
    if not info.enabled:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        if info.initialized_here:
            dist.destroy_process_group()


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Whether ``flag`` is true on any rank (every rank must call it); ``flag`` itself when not distributed."""
    if not info.enabled:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def sum_over_ranks(totals: torch.Tensor, info: DistInfo, device: torch.device) -> torch.Tensor:
    """``totals`` summed over every rank (on the CPU); ``totals`` itself when not distributed."""
    if not info.enabled:
        return totals
    import torch.distributed as dist

    on_device = totals.to(device)
    dist.all_reduce(on_device)
    return on_device.cpu()


def torchrun_command(nproc: int, module_args: list[str], *, standalone: bool = True) -> list[str]:
    """The command that re-launches ``python -m mlcore <module_args>`` as ``nproc`` processes on this
    machine with ``torch.distributed.run`` (torchrun): ``--standalone`` picks a free rendezvous port.

    For several machines, run torchrun yourself on each node with the rendezvous flags instead
    (``--nnodes``, ``--node_rank``, ``--rdzv_backend=c10d``, ``--rdzv_endpoint=HOST:PORT``,
    ``--rdzv_id``; see docs/architecture.md).
    """
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run"]
    if standalone:
        cmd.append("--standalone")
    return [*cmd, f"--nproc_per_node={nproc}", "-m", "mlcore", *module_args]
