"""The trainer's DataLoaders: a reproducible training order per epoch, sharded under DDP."""

from __future__ import annotations

from typing import Any

import attrs
import torch

from mlcore.errors import DataError
from mlcore.training._distributed import DistInfo


def shuffle_seed(seed: int, epoch: int) -> int:
    """The seed of the training-order generator for ``epoch`` (1-based); depends on nothing else."""
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1)


def seed_worker(worker_id: int) -> None:
    """Seed ``random`` and NumPy in DataLoader workers from torch's per-worker seed."""
    import random

    import numpy as np

    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


@attrs.define
class Loaders:
    """The training and validation loaders and what orders the training set.

    ``set_epoch(epoch)`` re-seeds the order so that epoch ``e`` depends only on ``(seed, e)``.
    """

    train: Any
    val: Any
    seed: int
    generator: torch.Generator
    sampler: Any = None

    def set_epoch(self, epoch: int) -> None:
        """Fix the training order of ``epoch`` (1-based)."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
        self.generator.manual_seed(shuffle_seed(self.seed, epoch))


def build_loaders(
    data: Any,
    *,
    batch_size: int,
    eval_batch_size: int,
    num_workers: int,
    device: torch.device,
    dist: DistInfo,
    seed: int,
) -> Loaders:
    """Prepare ``data`` and build its loaders; an empty or iterable training set is a :class:`DataError`."""
    from torch.utils.data import DataLoader, DistributedSampler, IterableDataset

    if hasattr(data, "prepare"):
        data.prepare()
    train_set = data.train_set()
    if isinstance(train_set, IterableDataset):
        raise DataError(
            f"{type(data).__name__}.train_set() is an IterableDataset; the trainer needs a map-style dataset "
            "(with __len__ and __getitem__) to shuffle it reproducibly"
        )
    if train_set is None or len(train_set) == 0:
        raise DataError(f"{type(data).__name__}.train_set() is empty: nothing to train on")
    val_set = data.val_set() if hasattr(data, "val_set") else None
    if val_set is not None and len(val_set) == 0:
        val_set = None
    common: dict[str, Any] = {
        "num_workers": num_workers,
        "collate_fn": getattr(data, "collate_fn", None),
        "pin_memory": device.type == "cuda",
    }
    if num_workers > 0:
        common["worker_init_fn"] = seed_worker
    generator = torch.Generator()
    sampler: Any = None
    if dist.enabled:
        sampler = DistributedSampler(train_set, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=seed)
        train = DataLoader(train_set, batch_size=batch_size, sampler=sampler, generator=generator, **common)
    else:
        train = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator, **common)
    val = DataLoader(val_set, batch_size=eval_batch_size, shuffle=False, **common) if val_set is not None else None
    return Loaders(train=train, val=val, seed=seed, generator=generator, sampler=sampler)
