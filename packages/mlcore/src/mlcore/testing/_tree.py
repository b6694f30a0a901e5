"""Helpers of the kit for nested data (tensors inside dicts, lists and tuples).

A structured batch object that presents its tensors as ``to_dict()`` (e.g. a torch-geometric
``Data``/``Batch``) is read through that dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def as_mapping(obj: Any) -> Mapping[str, Any] | None:
    """``obj.to_dict()`` for structured batch objects (e.g. torch-geometric ``Data``), else ``None``."""
    to_dict = getattr(obj, "to_dict", None)
    if isinstance(obj, type) or not callable(to_dict):
        return None
    try:
        found = to_dict()
    except TypeError:
        return None
    return found if isinstance(found, Mapping) else None


def tensors(obj: Any) -> list[torch.Tensor]:
    """Every tensor inside nested dicts/lists/tuples (and ``to_dict()`` objects), in order."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    mapped = as_mapping(obj)
    if mapped is not None:
        return tensors(mapped)
    if isinstance(obj, Mapping):
        return [t for v in obj.values() for t in tensors(v)]
    if isinstance(obj, list | tuple):
        return [t for v in obj for t in tensors(v)]
    return []


def all_finite(obj: Any) -> bool:
    """No floating or complex tensor inside ``obj`` holds NaN or inf."""
    return all(bool(t.detach().isfinite().all()) for t in tensors(obj) if t.is_floating_point() or t.is_complex())


def same(a: Any, b: Any) -> bool:
    """Structural equality of nested data, tensors compared by shape, dtype and value (NaN equals NaN)."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a.cpu(), b.cpu()))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    ma, mb = as_mapping(a), as_mapping(b)
    if ma is not None and mb is not None:
        return type(a) is type(b) and same(ma, mb)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def outputs_close(a: Any, b: Any, *, rtol: float = 1e-5, atol: float = 1e-7) -> bool:
    """The tensors inside ``a`` and ``b`` have equal shapes and close values."""
    import torch

    ta, tb = tensors(a), tensors(b)
    return len(ta) == len(tb) and all(
        x.shape == y.shape and bool(torch.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True))
        for x, y in zip(ta, tb, strict=True)
    )
