"""Deep-equilibrium planners: DE-VIN and DE-SymVIN (Zhao et al., "Scaling up and Stabilizing
Differentiable Planning with Implicit Differentiation", ICLR 2023).

Value iteration ``v ← f(v) = max(q_r + conv(v; W_v))`` is run to its fixed point ``v* = f(v*)``
by a root finder instead of K unrolled steps:

- forward: :func:`anderson` (Anderson acceleration) or :func:`forward_iteration` under
  ``no_grad``, until the relative residual ``|f(v) - v| / |f(v)|`` (worst sample of the batch)
  is below ``tol`` or ``max_iter`` evaluations are spent;
- backward: implicit differentiation. One differentiable step ``v* = f(v*)`` connects the
  fixed point to the parameters; a hook on it replaces the incoming gradient ``u`` by the
  solution of the adjoint fixed point ``g = J_f(v*)^T g + u`` (the backward hook of the DEQ
  literature, Bai, Kolter & Koltun 2019), solved by the same root finder with vector–Jacobian
  products. Memory does not grow with the number of iterations.

After each forward ``last_convergence`` holds ``iterations``, ``residual`` and ``converged``
(1.0/0.0) of the forward solve; after a backward pass it also holds ``backward_iterations``,
``backward_residual`` and ``backward_converged``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mlcore_diffplan_vins.models.base import check_maps
from mlcore_diffplan_vins.models.bellman import bellman_max, to_cells
from mlcore_diffplan_vins.models.d4 import ORDER
from mlcore_diffplan_vins.models.planner_config import DESymVINConfig, DEVINConfig
from mlcore_diffplan_vins.models.symvin import SymVIN
from mlcore_diffplan_vins.models.vin import VIN

__all__ = ["DEVIN", "DESymVIN", "anderson", "equilibrium", "forward_iteration", "solve"]

Solution = tuple[Tensor, dict[str, float]]


def _residual(fx: Tensor, x: Tensor) -> float:
    """Worst per-sample relative residual ``|f(x) - x| / (|f(x)| + 1e-8)`` (rows = samples)."""
    num = (fx - x).flatten(1).norm(dim=1)
    den = fx.flatten(1).norm(dim=1) + 1e-8
    return float((num / den).max())


def _stats(iterations: int, residual: float, tol: float) -> dict[str, float]:
    return {"iterations": float(iterations), "residual": residual, "converged": float(residual < tol)}


def forward_iteration(f: Callable[[Tensor], Tensor], x0: Tensor, *, max_iter: int, tol: float) -> Solution:
    """Plain fixed-point iteration ``x ← f(x)``; returns the iterate with the lowest residual and stats."""
    x = x0
    best, best_res, count = x0, float("inf"), 0
    for count in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        fx = f(x)
        res = _residual(fx, x)
        if res < best_res:
            best, best_res = fx, res
        x = fx
        if res < tol:
            break
    return best, _stats(count, best_res, tol)


def anderson(
    f: Callable[[Tensor], Tensor],
    x0: Tensor,
    *,
    max_iter: int,
    tol: float,
    memory: int = 5,
    lam: float = 1e-4,
    beta: float = 1.0,
) -> Solution:
    """Anderson acceleration for ``x = f(x)`` (batched over the first axis; Walker & Ni 2011).

    Each step mixes the last ``memory`` evaluations with weights ``alpha`` (summing to 1) that
    minimise ``|Σ alpha_i (f(x_i) - x_i)|`` (ridge ``lam`` times the Gram matrix's mean diagonal,
    so it does not swamp the problem as the residuals shrink), solved per sample. Returns
    ``f(x)`` of the iterate with the lowest residual and the stats (``iterations`` = evaluations of ``f``).
    """
    if max_iter < 2 or memory < 2:
        return forward_iteration(f, x0, max_iter=max_iter, tol=tol)
    shape, b = x0.shape, x0.shape[0]

    def flat_f(x: Tensor) -> Tensor:
        return f(x.reshape(shape)).reshape(b, -1)

    x_flat = x0.reshape(b, -1)
    n, m = x_flat.shape[1], memory
    xs = x_flat.new_zeros(b, m, n)
    fs = x_flat.new_zeros(b, m, n)
    xs[:, 0], fs[:, 0] = x_flat, flat_f(x_flat)
    best, best_res = fs[:, 0].clone(), _residual(fs[:, 0], xs[:, 0])
    if best_res < tol:
        return best.reshape(shape), _stats(1, best_res, tol)
    xs[:, 1], fs[:, 1] = fs[:, 0], flat_f(fs[:, 0])
    res = _residual(fs[:, 1], xs[:, 1])
    if res < best_res:
        best, best_res = fs[:, 1].clone(), res
    count = 2
    h = x_flat.new_zeros(b, m + 1, m + 1)
    h[:, 0, 1:] = h[:, 1:, 0] = 1.0
    y = x_flat.new_zeros(b, m + 1, 1)
    y[:, 0] = 1.0
    while best_res >= tol and count < max_iter:
        used = min(count, m)
        g = fs[:, :used] - xs[:, :used]
        gram = g @ g.transpose(1, 2)
        # ridge relative to the Gram matrix's scale, so it stays a regulariser near convergence
        scale = gram.diagonal(dim1=1, dim2=2).mean(dim=1).clamp_min(torch.finfo(x0.dtype).tiny)
        eye = torch.eye(used, dtype=x0.dtype, device=x0.device)
        h[:, 1 : used + 1, 1 : used + 1] = gram + lam * scale[:, None, None] * eye
        alpha = torch.linalg.solve(h[:, : used + 1, : used + 1], y[:, : used + 1])[:, 1 : used + 1, 0]
        slot = count % m
        mixed_f = (alpha[:, None] @ fs[:, :used])[:, 0]
        xs[:, slot] = mixed_f if beta == 1.0 else beta * mixed_f + (1 - beta) * (alpha[:, None] @ xs[:, :used])[:, 0]
        fs[:, slot] = flat_f(xs[:, slot])
        count += 1
        res = _residual(fs[:, slot], xs[:, slot])
        if res < best_res:
            best, best_res = fs[:, slot].clone(), res
    return best.reshape(shape), _stats(count, best_res, tol)


def solve(
    f: Callable[[Tensor], Tensor], x0: Tensor, *, solver: str, max_iter: int, tol: float, memory: int = 5
) -> Solution:
    """Find ``x = f(x)`` from ``x0`` with ``solver`` (``anderson`` or ``forward``)."""
    if solver == "anderson":
        return anderson(f, x0, max_iter=max_iter, tol=tol, memory=memory)
    if solver == "forward":
        return forward_iteration(f, x0, max_iter=max_iter, tol=tol)
    raise ValueError(f"solver={solver!r} is not allowed (allowed: anderson, forward)")


def equilibrium(
    f: Callable[[Tensor], Tensor],
    x0: Tensor,
    *,
    solver: str,
    max_iter: int,
    tol: float,
    memory: int = 5,
    stats: dict[str, float] | None = None,
) -> Tensor:
    """The fixed point ``x* = f(x*)``, differentiable by implicit differentiation (see the module docstring).

    ``stats`` (if given) is filled with the forward solve's statistics, and with the backward
    solve's (``backward_*``) when the gradient is computed.
    """
    with torch.no_grad():
        x_star, forward_stats = solve(f, x0, solver=solver, max_iter=max_iter, tol=tol, memory=memory)
    if stats is not None:
        stats.update(forward_stats)
    if not torch.is_grad_enabled():
        return x_star
    x_star = f(x_star)  # one differentiable step: the gradient reaches the parameters through it
    if not x_star.requires_grad:
        return x_star
    x_detached = x_star.detach().requires_grad_()
    f_detached = f(x_detached)  # graph of f at the fixed point, for the vector-Jacobian products

    def adjoint(grad: Tensor | None) -> Tensor | None:
        if grad is None:  # an undefined gradient stays undefined
            return None

        def step(g: Tensor) -> Tensor:
            (vjp,) = torch.autograd.grad(f_detached, x_detached, g, retain_graph=True)
            return vjp + grad

        g, backward_stats = solve(
            step, torch.zeros_like(grad), solver=solver, max_iter=max_iter, tol=tol, memory=memory
        )
        if stats is not None:
            stats.update({f"backward_{key}": value for key, value in backward_stats.items()})
        return g

    x_star.register_hook(adjoint)
    return x_star


class DEVIN(VIN):
    """VIN whose value map is the fixed point of the Bellman backup (same layers as :class:`VIN`)."""

    config: DEVINConfig  # type: ignore[assignment]

    def __init__(self, config: DEVINConfig | None = None) -> None:
        super().__init__(config or DEVINConfig())  # type: ignore[arg-type]

    def forward(self, maps: Tensor) -> Tensor:
        """``[B, 2, M, M]`` maps -> ``[B, A, M, M]`` action logits; sets ``last_convergence``."""
        check_maps(maps)
        cfg = self.config
        pad = cfg.kernel_size // 2
        q_r = self.q_r(self.r(self.h(maps)))
        w_v = self.q_v.weight
        q_r_cells = to_cells(q_r)

        def backup(v: Tensor) -> Tensor:
            return bellman_max(q_r_cells, v, w_v)

        stats: dict[str, float] = {}
        v0 = torch.zeros_like(q_r[:, :1])
        v = equilibrium(
            backup, v0, solver=cfg.solver, max_iter=cfg.max_iter, tol=cfg.tol, memory=cfg.anderson_memory, stats=stats
        )
        self.last_convergence = stats
        q = q_r + F.conv2d(v, w_v, padding=pad)
        self.last_values = q.detach().amax(dim=1)
        return self.policy(q)


class DESymVIN(SymVIN):
    """SymVIN whose value field is the fixed point of the equivariant Bellman backup.

    The root finder works on the regular value field ``[B, 8, M, M]``; every step it takes is
    equivariant, so the fixed point and the policy are too (up to the solver's tolerance).
    """

    config: DESymVINConfig

    def __init__(self, config: DESymVINConfig | None = None) -> None:
        super().__init__(config or DESymVINConfig())

    def forward(self, maps: Tensor) -> Tensor:
        """``[B, 2, M, M]`` maps -> ``[B, A, M, M]`` action logits; sets ``last_convergence``."""
        check_maps(maps)
        cfg = self.config
        q_r, w_v = self.reward_and_kernel(maps)
        q_r_cells = to_cells(q_r, ORDER)

        def backup(v: Tensor) -> Tensor:
            return bellman_max(q_r_cells, v, w_v)

        stats: dict[str, float] = {}
        v0 = torch.zeros_like(self.value(q_r))
        v = equilibrium(
            backup, v0, solver=cfg.solver, max_iter=cfg.max_iter, tol=cfg.tol, memory=cfg.anderson_memory, stats=stats
        )
        self.last_convergence = stats
        return self.head(self.bellman(v, q_r, w_v))
