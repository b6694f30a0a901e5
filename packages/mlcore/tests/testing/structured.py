"""A stand-in for a structured batch object (like a torch-geometric ``Batch``), without the dependency."""

from __future__ import annotations

from typing import Any

import torch


class NodeBatch:
    """``num`` samples of ``3`` rows each: tensors per row (dim 0 = rows, not samples), ``batch_size`` = samples."""

    def __init__(self, num: int, x: torch.Tensor | None = None) -> None:
        self.batch_size = num
        self.x = torch.arange(3.0 * num).reshape(-1, 1) if x is None else x

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x}

    def to(self, device: Any, non_blocking: bool = False) -> NodeBatch:
        return NodeBatch(self.batch_size, self.x.to(device, non_blocking=non_blocking))


class RowModel(torch.nn.Module):
    """One output row per input row."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(1, 2)

    def forward(self, batch: NodeBatch) -> torch.Tensor:
        return self.lin(batch.x)  # type: ignore[no-any-return]

    def example_input(self, batch_size: int = 2) -> NodeBatch:
        return NodeBatch(batch_size)
