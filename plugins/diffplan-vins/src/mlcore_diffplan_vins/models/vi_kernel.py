"""Value iteration ``v <- max_c (q_r + conv(v; W))`` as one autograd function with a sparse backward.

The textbook VIN unrolls K steps of ``conv2d`` + ``max`` in autograd: every step keeps the dense
``[B, l_q, M, M]`` Q map for the backward pass, and ``conv2d``'s backward for a one-channel input
is slow on CPU. Here the forward runs the K steps without a graph, keeping per step only the
value map and the index of the maximising channel (``[B, M*M]`` each); the backward walks the
steps in reverse and, since ``max`` passes the gradient to one channel per cell, works on
``k*k``-wide (not ``l_q``-wide) tensors. The result and its gradients equal the unrolled
``conv2d`` + ``max`` (ties broken as ``torch.max`` breaks them); ``tests/models/test_vi_kernel.py``
checks both against autograd.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["neighbourhoods", "value_iteration"]


def neighbourhoods(v: Tensor, size: int, ks: int) -> Tensor:
    """``[B, M*M]`` values -> ``[B, M*M, ks*ks]`` zero-padded neighbourhoods, in conv2d weight order."""
    return F.unfold(v.view(v.shape[0], 1, size, size), ks, padding=ks // 2).transpose(1, 2)


def _fold(grad: Tensor, size: int, ks: int) -> Tensor:
    """Adjoint of :func:`neighbourhoods`: ``[B, M*M, ks*ks]`` -> ``[B, M*M]``."""
    return F.fold(grad.transpose(1, 2), (size, size), ks, padding=ks // 2).reshape(grad.shape[0], -1)


class _ValueIteration(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, qr: Tensor, w: Tensor, steps: int, size: int, ks: int) -> Tensor:  # type: ignore[override]
        v, idx = qr.max(dim=-1)
        values, indices = [], [idx]
        for _ in range(steps):
            values.append(v)
            q = torch.baddbmm(qr, neighbourhoods(v, size, ks), w.expand(qr.shape[0], *w.shape))
            v, idx = q.max(dim=-1)
            indices.append(idx)
        ctx.save_for_backward(w, *values, *indices)
        ctx.meta = (steps, size, ks, qr.shape)
        return v

    @staticmethod
    def backward(ctx: Any, grad_v: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        steps, size, ks, shape = ctx.meta
        w, *rest = ctx.saved_tensors
        values, indices = rest[:steps], rest[steps:]
        lq = shape[-1]
        grad_qr = torch.zeros(shape, dtype=grad_v.dtype, device=grad_v.device)
        grad_w_t = torch.zeros(lq, w.shape[0], dtype=grad_v.dtype, device=grad_v.device)  # [l_q, k*k]
        w_t = w.t()
        g = grad_v
        for t in range(steps, 0, -1):
            idx = indices[t]
            grad_qr.scatter_add_(-1, idx.unsqueeze(-1), g.unsqueeze(-1))
            nb = neighbourhoods(values[t - 1], size, ks)
            grad_w_t.index_add_(0, idx.reshape(-1), (g.unsqueeze(-1) * nb).reshape(-1, nb.shape[-1]))
            g = _fold(g.unsqueeze(-1) * w_t[idx], size, ks)
        grad_qr.scatter_add_(-1, indices[0].unsqueeze(-1), g.unsqueeze(-1))
        return grad_qr, grad_w_t.t(), None, None, None


def value_iteration(qr: Tensor, w: Tensor, steps: int, size: int, ks: int) -> Tensor:
    """``steps`` VI steps from ``v = max_c qr``: returns ``v`` ``[B, M*M]``.

    Args:
        qr: ``[B, M*M, l_q]`` the reward term of Q (channels last).
        w: ``[ks*ks, l_q]`` the transition kernel applied to ``v``.
        steps: iterations after the initial max (K - 1 for a K-step VIN whose last Q is built outside).
        size: the map side M; ``ks``: the kernel size.
    """
    return _ValueIteration.apply(qr, w, steps, size, ks)  # type: ignore[no-any-return]
