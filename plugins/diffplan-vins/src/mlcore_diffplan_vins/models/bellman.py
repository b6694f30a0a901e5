"""The fused Bellman backup ``v' = max_c (q_r + conv(v; W))[c, g]`` of value iteration, made fast.

Two things make the plain ``conv2d`` + ``amax`` step slow on a CPU, and this module avoids both:

- Layout: the max runs over the Q fields, which ``conv2d``'s NCHW output strides far apart.
  Here the step is one GEMM on cell-major data (``unfold(v) @ W`` added to the reward term
  kept as ``[B, cells, G * C]``, group-major), so the max reduces over a contiguous block.
- Backward: the intermediate Q maps only feed the max, so their gradient is zero except at the
  maximising channel of each (group channel, cell). Autograd would run two dense products per
  step backwards; :func:`bellman_max` keeps the argmax and gets the input gradient from one
  fused gather-and-weighted-sum (``embedding_bag``) and the weight gradient from that op's own
  backward (an index-add), about ``C`` times fewer multiply-adds. The gradients equal
  autograd's through ``torch.max`` (which also sends the gradient to one maximising entry);
  the tests check them with ``gradcheck``.

Shapes: ``q_r_cells`` is ``[B, M * N, G * C]`` (:func:`to_cells` of a ``[B, C * G, M, N]`` map
of ``C`` fields of ``G`` channels, field-major), ``v`` is ``[B, G, M, N]`` and ``w`` is
``[C * G, G, k, k]``; the result is ``[B, G, M, N]`` with ``v'[g] = max_c q[c * G + g]``.
``G = 8`` for SymVIN's regular fields, ``G = 1`` for VIN.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bellman_max", "cell_patches", "to_cells"]


def to_cells(q: Tensor, group_size: int = 1) -> Tensor:
    """``[B, C * G, M, N]`` (field-major) → ``[B, M * N, G * C]`` (group-major), :func:`bellman_max`'s layout."""
    b, cg, m, n = q.shape
    fields = q.reshape(b, cg // group_size, group_size, m, n)
    return fields.permute(0, 3, 4, 2, 1).reshape(b, m * n, cg).contiguous()


def cell_patches(v: Tensor, k: int) -> Tensor:
    """``[B, G, M, N]`` → ``[B * M * N, G * k * k]`` (entries ordered as ``F.unfold``'s), one copy."""
    b, g, m, n = v.shape
    padded = F.pad(v.permute(0, 2, 3, 1), (0, 0, k // 2, k // 2, k // 2, k // 2))  # [B, M+2p, N+2p, G]
    return padded.unfold(1, k, 1).unfold(2, k, 1).reshape(b * m * n, g * k * k)


def _unpatch(cols: Tensor) -> Tensor:
    """The adjoint of :func:`cell_patches`: ``[B, M, N, G, k, k]`` → ``[B, G, M, N]`` (sums the overlaps)."""
    b, m, n, g, k, _ = cols.shape
    p = k // 2
    out = cols.new_zeros(b, m + 2 * p, n + 2 * p, g)
    for dy in range(k):
        for dx in range(k):
            out[:, dy : dy + m, dx : dx + n] += cols[..., dy, dx]
    return out[:, p : p + m, p : p + n].permute(0, 3, 1, 2)


class _BellmanMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, q_r_cells: Tensor, v: Tensor, w: Tensor) -> Tensor:  # type: ignore[override]
        b, g, m, n = v.shape
        cg, _, k, _ = w.shape
        c = cg // g
        patches = cell_patches(v, k)
        w_gc = w.reshape(c, g, g * k * k).transpose(0, 1).reshape(cg, g * k * k)  # rows g * C + c
        q = torch.addmm(q_r_cells.reshape(b * m * n, cg), patches, w_gc.t())
        out, idx = q.reshape(b * m * n, g, c).max(dim=2)  # a contiguous reduction
        ctx.save_for_backward(patches, w_gc, idx)
        ctx.shape = (b, g, m, n, k)
        return out.reshape(b, m, n, g).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:  # type: ignore[override]
        patches, w_gc, idx = ctx.saved_tensors
        b, g, m, n, k = ctx.shape
        cg = w_gc.shape[0]
        c = cg // g
        grad_cells = grad.permute(0, 2, 3, 1).reshape(b * m * n, g)
        grad_q_r = grad_v = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_q_r = grad_cells.new_zeros(b * m * n, g, c)
            grad_q_r.scatter_(2, idx.unsqueeze(2), grad_cells.unsqueeze(2))
            grad_q_r = grad_q_r.reshape(b, m * n, cg)
        if not (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            return grad_q_r, None, None
        # one "bag" per (b, cell): the G kernel rows its values came from (row g * C + c),
        # weighted by the incoming gradient; embedding_bag fuses the gather and the weighted sum
        rows = idx + c * torch.arange(g, device=idx.device)
        with torch.enable_grad():
            table = w_gc.detach().requires_grad_(ctx.needs_input_grad[2])
            cols = F.embedding_bag(rows, table, per_sample_weights=grad_cells.contiguous(), mode="sum")
            if ctx.needs_input_grad[2]:
                # the gradient of sum(cols * patches) w.r.t. the table is the weight gradient
                (grad_gc,) = torch.autograd.grad(cols, table, patches)
                grad_w = grad_gc.reshape(g, c, g * k * k).transpose(0, 1).reshape(cg, g, k, k)
        if ctx.needs_input_grad[1]:
            grad_v = _unpatch(cols.detach().reshape(b, m, n, g, k, k))
        return grad_q_r, grad_v, grad_w


def bellman_max(q_r_cells: Tensor, v: Tensor, w: Tensor) -> Tensor:
    """``v'[g] = max_c (q_r + conv2d(v, w, padding=k // 2))[c * G + g]``, with the sparse backward pass.

    ``q_r_cells`` is the reward term in the cell-major layout of :func:`to_cells`.
    """
    return _BellmanMax.apply(q_r_cells, v, w)
