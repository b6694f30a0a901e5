"""The kit's nested-data helpers read structured batch objects (``to_dict()``) like dicts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from mlcore.testing._tree import as_mapping, same, tensors

_spec = importlib.util.spec_from_file_location("kit_structured", Path(__file__).with_name("structured.py"))
assert _spec is not None and _spec.loader is not None
structured = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(structured)


def test_tensors_and_same_read_to_dict_objects() -> None:
    a, b = structured.NodeBatch(2), structured.NodeBatch(2)
    assert len(tensors((a, torch.zeros(1)))) == 2 and tensors(a)[0] is a.x
    assert same(a, b)
    assert not same(a, structured.NodeBatch(2, torch.ones(6, 1)))
    assert as_mapping(structured.NodeBatch) is None and as_mapping(3) is None
