"""Device selection: CUDA, then MPS, then CPU, unless the user names one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlcore.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """Return the torch device for ``auto|cpu|cuda|mps|cuda:N``; an unavailable one is a clear error."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise ConfigError(f"device={name!r} is not allowed (allowed: {', '.join(DEVICE_CHOICES)})")
    if base == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' requested but CUDA is not available on this machine (use --device auto)")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device='mps' requested but MPS is not available on this machine (use --device auto)")
    return torch.device(name)
