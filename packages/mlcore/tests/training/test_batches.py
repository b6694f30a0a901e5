"""The batch helpers move and size structured batch objects (``to_dict()`` + ``to()`` + ``batch_size``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from mlcore.training.batches import batch_size_of, move_to_device

_spec = importlib.util.spec_from_file_location(
    "kit_structured", Path(__file__).parents[1] / "testing" / "structured.py"
)
assert _spec is not None and _spec.loader is not None
structured = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(structured)


def test_structured_batches_size_and_move_themselves() -> None:
    batch = (structured.NodeBatch(4), torch.zeros(12, 2))
    assert batch_size_of(batch) == 4  # samples, not the 12 rows of its tensors
    moved = move_to_device(batch, "meta")
    assert isinstance(moved[0], structured.NodeBatch) and moved[0].x.device.type == "meta"
    assert moved[1].device.type == "meta"


def test_plain_batches_unchanged() -> None:
    assert batch_size_of((torch.zeros(5, 3), torch.zeros(5))) == 5
    assert batch_size_of({"a": [torch.zeros(7)]}) == 7
