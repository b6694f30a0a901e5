"""Value iteration ``v <- max_c (q_r + conv(v; W))`` as one autograd function with a sparse backward.

The textbook VIN unrolls K steps of ``conv2d`` + ``max`` in autograd: every step keeps the dense
``[B, l_q, M, M]`` Q map for the backward pass, and ``conv2d``'s backward for a one-channel input
is slow on CPU. Here maps are laid out as ``[channels, B*M*M]`` (channels outermost, so the max
over channels is an element-wise max of contiguous rows), a convolution is the kernel ``[l_q, k*k]``
times the cells' neighbourhoods ``[k*k, B*M*M]`` (one matmul), and the forward runs the K steps
without a graph with ``amax`` (no autograd nodes, no index tensors). The backward walks the
steps in reverse and routes the gradient to the maximising channel of every cell (split evenly
between exact ties, as ``amax`` does), then through the kernel with two small matmuls.
Values and gradients equal the unrolled ``conv2d`` + ``amax`` (and ``max``, which differs only
on exact ties): ``tests/models/test_vi_kernel.py`` checks both against autograd.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["from_rows", "neighbourhoods", "to_rows", "value_iteration"]


def to_rows(x: Tensor) -> Tensor:
    """``[B, C, M, M]`` -> ``[C, B*M*M]``."""
    return x.transpose(0, 1).reshape(x.shape[1], -1)


def from_rows(x: Tensor, batch: int, size: int) -> Tensor:
    """``[C, B*M*M]`` -> ``[B, C, M, M]``."""
    return x.reshape(x.shape[0], batch, size, size).transpose(0, 1)


def neighbourhoods(v: Tensor, batch: int, size: int, ks: int) -> Tensor:
    """``[B*M*M]`` one-channel map -> ``[ks*ks, B*M*M]`` zero-padded neighbourhoods, in conv2d weight order.

    Slices of the padded map stacked along a new first axis (``F.unfold`` loops over the batch and
    needs a transposing copy for this layout; this is one contiguous write).
    """
    p = ks // 2
    padded = F.pad(v.view(batch, size, size), (p, p, p, p))
    return torch.stack([padded[:, i : i + size, j : j + size] for i in range(ks) for j in range(ks)]).view(ks * ks, -1)


def _fold(grad: Tensor, batch: int, size: int, ks: int) -> Tensor:
    """Adjoint of :func:`neighbourhoods`: ``[ks*ks, B*M*M]`` -> ``[B*M*M]``."""
    p = ks // 2
    parts = grad.view(ks * ks, batch, size, size)
    out = grad.new_zeros(batch, size + 2 * p, size + 2 * p)
    for n, (i, j) in enumerate((i, j) for i in range(ks) for j in range(ks)):
        out[:, i : i + size, j : j + size] += parts[n]
    return out[:, p : p + size, p : p + size].reshape(-1)


class _ValueIteration(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, qr: Tensor, w: Tensor, steps: int, batch: int, size: int, ks: int) -> Tensor:  # type: ignore[override]
        v = qr.amax(dim=0)  # amax: ~25x faster on CPU than max with indices; the argmax is recovered below
        saved = [v]
        for _ in range(steps):
            nb = neighbourhoods(v, batch, size, ks)
            q = torch.addmm(qr, w, nb)
            v = q.amax(dim=0)
            saved += [nb, q, v]
        ctx.save_for_backward(qr, w, *saved)
        ctx.meta = (steps, batch, size, ks)
        return v

    @staticmethod
    def backward(ctx: Any, grad_v: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        steps, batch, size, ks = ctx.meta
        qr, w, v0, *saved = ctx.saved_tensors
        grad_qr = torch.zeros_like(qr)
        grad_w = torch.zeros_like(w)
        g = grad_v
        for t in range(steps - 1, -1, -1):
            nb, q, v = saved[3 * t : 3 * t + 3]
            sparse = _route(q, v, g)
            grad_qr += sparse
            grad_w.addmm_(sparse, nb.t())
            g = _fold(w.t() @ sparse, batch, size, ks)
        grad_qr += _route(qr, v0, g)
        return grad_qr, grad_w, None, None, None, None


def _route(q: Tensor, v: Tensor, g: Tensor) -> Tensor:
    """The gradient of ``v = q.amax(0)``: ``g`` to the maximising channel of each cell (split evenly on ties)."""
    sparse = (q == v).to(g.dtype)
    return sparse.mul_(g / sparse.sum(dim=0))


def value_iteration(qr: Tensor, w: Tensor, steps: int, batch: int, size: int, ks: int) -> Tensor:
    """``steps`` VI steps from ``v = max_c qr``: returns ``v`` ``[B*M*M]``.

    Args:
        qr: ``[l_q, B*M*M]`` the reward term of Q (:func:`to_rows` layout).
        w: ``[l_q, ks*ks]`` the transition kernel applied to ``v`` (a conv2d weight, flattened).
        steps: iterations after the initial max (K - 1 for a K-step VIN whose last Q is built outside).
        batch, size, ks: B, the map side M and the kernel size.
    """
    return _ValueIteration.apply(qr, w, steps, batch, size, ks)  # type: ignore[no-any-return]
