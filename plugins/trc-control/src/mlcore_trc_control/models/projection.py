"""Exact terminal constraint for control-sequence models of a linear system.

``x_N = A^N x_0 + G U`` is linear in the stacked controls ``U``, so the controls that reach the
target form an affine subspace. :class:`TerminalProjection` maps any prediction onto it (the
``R``-weighted least-change correction ``U - R̄⁻¹G'(G R̄⁻¹G')⁻¹ (G U - (r - A^N x_0))``), alternated
with clamping to the box ``|u| <= control_limit`` (alternating projections), ending with the clamp
so the box always holds. Differentiable; exports to ONNX (matrix products and a clamp only).

With ``horizons=(T_min, T_max)`` (a data set whose problems each have their own horizon ``T``,
input column ``2n``) the projection is *horizon-aware*: the maps are computed per problem inside
``forward`` from the continuous model ``x' = Ac x + Bc u`` held in buffers — the exact ZOH step
``[[A, B], [0, I]] = expm([[Ac, Bc], [0, 0]] T/N)`` by scaling and squaring a fixed-order Taylor
series, ``A^k`` by repeated matmul, ``G = [A^{N-1-j} B]``, and ``(G R̄⁻¹G')⁻¹`` by Newton–Schulz
iterations — in float64, matrix products only, with loop counts fixed (and checked against
SciPy over the horizon range) by :meth:`TerminalProjection.set_system`. Without ``horizons`` the
maps are precomputed for the system's one horizon (the default, fast path).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mlcore.errors import ConfigError

__all__ = ["TerminalProjection"]

#: Taylor order of the matrix exponential of the horizon-aware mode; the squarings bring the
#: scaled block's 1-norm to <= _EXPM_THETA, where the truncation error is at most
#: 0.5^13/13! e^0.5 = 3e-14 (relative); set_system checks the result against SciPy to 1e-9.
_EXPM_ORDER = 12
_EXPM_THETA = 0.5
#: Newton–Schulz: iterations until the (Jacobi-scaled) Gram inverse's residual ||I - Gram X||_1 is
#: <= _INVERSE_TOL, or has stopped shrinking at <= _INVERSE_FLOOR (the rounding floor of an
#: ill-conditioned Gram), on the worst horizon of the range; plus _INVERSE_MARGIN (one more
#: iteration covers a Gram conditioned 2x worse, so 4 cover 16x), at most _INVERSE_MAX.
_INVERSE_TOL = 1e-13
_INVERSE_FLOOR = 1e-8
_INVERSE_MARGIN = 4
_INVERSE_MAX = 200
#: horizons checked by set_system (evenly over [T_min, T_max]), and the largest |G·correction - I|
#: accepted there (a terminal error of at most 1e-6 of the one corrected)
_CHECK_RESIDUAL = 1e-6
_CHECK_HORIZONS = 9


def _terminal_maps(a: np.ndarray, b: np.ndarray, w_inv: np.ndarray, steps: int) -> tuple[np.ndarray, ...]:
    """``A^N``, ``G = [A^{N-1-j} B]`` ``(n, N*m)`` and the weighted Gram ``G W⁻¹ G'`` of the discrete
    step ``(a, b)`` over ``steps`` (NumPy, float64; ``w_inv = I ⊗ R⁻¹``)."""
    powers = [np.eye(a.shape[0])]
    for _ in range(steps):
        powers.append(a @ powers[-1])
    g = np.concatenate([powers[steps - 1 - j] @ b for j in range(steps)], axis=1)
    return powers[steps], g, g @ w_inv @ g.T


class TerminalProjection(nn.Module):
    """Project controls ``(B, N, m)`` onto ``x_N = r`` (and the box) for problems ``[x_0, r, T]``.

    The system is held in buffers set by :meth:`set_system` (so a checkpoint restores it); until
    then — or, fixed-horizon, for a system that cannot reach every target in ``N`` steps — the
    correction is zero and the projection is the identity. ``forward`` has no data-dependent branches (it traces).
    ``horizons=(T_min, T_max)`` makes it horizon-aware (see the module docstring): each problem is
    projected with the exact discretisation of its own ``T``.
    """

    terminal_map: torch.Tensor  # G' (N*m, n)
    free_map: torch.Tensor  # (A^N)' (n, n)
    correction: torch.Tensor  # (R̄⁻¹G'(G R̄⁻¹G')⁻¹)' (n, N*m)
    limit: torch.Tensor  # inf when unbounded
    continuous: torch.Tensor  # horizon-aware: [[Ac, Bc], [0, 0]] (n+m, n+m), float64
    weight_inv: torch.Tensor  # horizon-aware: R⁻¹ (m, m), float64
    horizon_bounds: torch.Tensor  # horizon-aware: [T_min, T_max] in seconds, float64

    def __init__(
        self,
        state_dim: int,
        control_dim: int,
        num_steps: int,
        iterations: int = 20,
        horizons: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.state_dim, self.control_dim, self.num_steps = state_dim, control_dim, num_steps
        self.iterations = iterations
        self.horizon_aware = horizons is not None
        # loop counts of the horizon-aware maps (0 = not set up: the identity); derived from the
        # buffers by set_system and again when a checkpoint is loaded
        self.squarings = 0
        self.inverse_iterations = 0
        if horizons is not None:
            low, high = (float(v) for v in horizons)
            if not 0 < low <= high:
                raise ConfigError(f"model.projection_horizons={list(horizons)!r}: need 0 < T_min <= T_max")
            size = state_dim + control_dim
            self.register_buffer("continuous", torch.zeros(size, size, dtype=torch.float64))
            self.register_buffer("weight_inv", torch.eye(control_dim, dtype=torch.float64))
            self.register_buffer("horizon_bounds", torch.tensor([low, high], dtype=torch.float64))
            self.register_buffer("limit", torch.tensor(float("inf")))
            return
        dim = num_steps * control_dim
        self.register_buffer("terminal_map", torch.zeros(dim, state_dim))
        self.register_buffer("free_map", torch.eye(state_dim))
        self.register_buffer("correction", torch.zeros(state_dim, dim))
        self.register_buffer("limit", torch.tensor(float("inf")))

    @torch.no_grad()
    def set_system(self, system: Any) -> None:
        """Build the maps from a :class:`~mlcore_trc_control.lqr.systems.LinearSystem` (float64, then cast).

        Horizon-aware: store its continuous model and fix the loop counts for the horizon range
        (:class:`ConfigError` when it has no continuous model, cannot reach every target at some
        horizon of the range, or the maps are not accurate there)."""
        limit = float(system.control_limit)
        self.limit.fill_(limit if limit > 0 else float("inf"))
        if self.horizon_aware:
            self._set_continuous(system)
            return
        a, b, r = (np.asarray(getattr(system, k), dtype=np.float64) for k in ("A", "B", "R"))
        w_inv = np.kron(np.eye(self.num_steps), np.linalg.inv(r))
        free, g, gram = _terminal_maps(a, b, w_inv, self.num_steps)
        if np.linalg.matrix_rank(gram) < self.state_dim:  # not controllable in N steps: no exact projection
            self.correction.zero_()
            return
        self.terminal_map.copy_(torch.as_tensor(g.T))
        self.free_map.copy_(torch.as_tensor(free.T))
        self.correction.copy_(torch.as_tensor((w_inv @ g.T @ np.linalg.inv(gram)).T))

    def _set_continuous(self, system: Any) -> None:
        name = getattr(system, "name", "?")
        if getattr(system, "ac", None) is None or getattr(system, "bc", None) is None:
            raise ConfigError(
                f"model.projection_horizons: system {name!r} is given in discrete time; a horizon-aware "
                "terminal projection needs its continuous-time a, b (continuous=true)"
            )
        n = self.state_dim
        self.continuous.zero_()
        self.continuous[:n, :n] = torch.as_tensor(np.asarray(system.ac, dtype=np.float64))
        self.continuous[:n, n:] = torch.as_tensor(np.asarray(system.bc, dtype=np.float64))
        self.weight_inv.copy_(torch.as_tensor(np.linalg.inv(np.asarray(system.R, dtype=np.float64))))
        self._configure(name)

    @torch.no_grad()
    def _configure(self, name: str = "the system") -> None:
        """Fix the squarings and Newton–Schulz iterations for the horizon range, then check the maps
        against SciPy's ``expm`` and an exact inverse on horizons across the range."""
        from scipy.linalg import expm

        block = self.continuous.detach().cpu().double().numpy()
        low, high = (float(v) for v in self.horizon_bounds)
        n, steps = self.state_dim, self.num_steps
        self.squarings = self.inverse_iterations = 0
        if not np.any(block):  # no system yet: the identity
            return
        scaled = np.abs(block).sum(0).max() * high / steps
        self.squarings = max(0, int(np.ceil(np.log2(scaled / _EXPM_THETA)))) if scaled > 0 else 0
        r_inv = self.weight_inv.detach().cpu().double().numpy()
        horizons = np.linspace(low, high, _CHECK_HORIZONS)
        exact = []
        needed = 0
        w_inv = np.kron(np.eye(steps), r_inv)
        for horizon in horizons:
            phi = expm(block * horizon / steps)
            power, g, gram = _terminal_maps(phi[:n, :n], phi[:n, n:], w_inv, steps)
            if np.linalg.matrix_rank(gram) < n:
                raise ConfigError(
                    f"model.projection_horizons: system {name!r} cannot reach every target in {steps} steps "
                    f"at horizon {horizon:.4g} s; set model.terminal_projection=false"
                )
            d = 1.0 / np.sqrt(np.diag(gram))
            scaled_gram, x, previous = gram * np.outer(d, d), np.eye(n) / n, np.inf
            for count in range(1, _INVERSE_MAX + 1):
                x = x @ (2 * np.eye(n) - scaled_gram @ x)
                residual = np.abs(np.eye(n) - scaled_gram @ x).sum(0).max()
                if residual <= _INVERSE_TOL or (residual <= _INVERSE_FLOOR and residual > 0.5 * previous):
                    needed = max(needed, count)
                    break
                previous = residual
            else:
                raise ConfigError(
                    f"model.projection_horizons: the terminal Gram of {name!r} at horizon {horizon:.4g} s is too "
                    f"ill-conditioned (cond {np.linalg.cond(gram):.1e}) for {_INVERSE_MAX} Newton-Schulz iterations; "
                    "set model.terminal_projection=false or narrow dataset.horizon_range"
                )
            exact.append((power, g))
        self.inverse_iterations = needed + _INVERSE_MARGIN
        free, g_map, corr = self._maps(torch.as_tensor(horizons, dtype=torch.float64, device=self.continuous.device))
        for i, (power, g) in enumerate(exact):
            residual = np.abs(g_map[i].cpu().numpy() @ corr[i].cpu().numpy() - np.eye(n)).max()
            error = max(
                np.abs(free[i].cpu().numpy() - power).max() / max(1.0, np.abs(power).max()),
                np.abs(g_map[i].cpu().numpy() - g).max() / max(1.0, np.abs(g).max()),
            )
            if not (error <= 1e-9 and residual <= _CHECK_RESIDUAL):
                raise ConfigError(
                    f"model.projection_horizons: the per-problem terminal maps of {name!r} are inaccurate at "
                    f"horizon {horizons[i]:.4g} s (relative error {error:.1e}, G·correction - I {residual:.1e}); "
                    "set model.terminal_projection=false or narrow dataset.horizon_range"
                )

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any) -> None:
        # checkpoints of models trained before the projection existed lack these buffers: keep the
        # current ones (the identity unless set_system ran), so such a model computes what it learnt
        for name, buf in self._buffers.items():
            if buf is not None:
                state_dict.setdefault(prefix + name, buf.detach().clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.horizon_aware:  # the loop counts follow from the restored system and range
            self._configure()

    def _maps(self, horizon: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-problem ``A^N (B, n, n)``, ``G (B, n, N*m)`` and ``R̄⁻¹G'(G R̄⁻¹G')⁻¹ (B, N*m, n)`` for
        horizons ``(B,)`` in float64.

        Handwritten from matrix products because ``torch.linalg.matrix_exp`` and ``torch.linalg.inv``
        do not export to ONNX: a Taylor series of fixed order with a fixed number of squarings for
        ``expm``, Newton–Schulz iterations (Jacobi-scaled Gram, started at ``I/n``) for the inverse.
        """
        n, m, steps = self.state_dim, self.control_dim, self.num_steps
        size = n + m
        eye = torch.eye(size, dtype=torch.float64, device=horizon.device)
        step = horizon.to(torch.float64) / (steps * 2.0**self.squarings)
        block = self.continuous.to(torch.float64) * step[:, None, None]  # (B, n+m, n+m)
        phi = eye + block / _EXPM_ORDER  # Horner: I + M (I + M/2 (... (I + M/K)))
        for k in range(_EXPM_ORDER - 1, 0, -1):
            phi = eye + block @ phi / k
        for _ in range(self.squarings):
            phi = phi @ phi
        a, b = phi[:, :n, :n], phi[:, :n, n:]
        powers = [torch.eye(n, dtype=torch.float64, device=horizon.device).expand_as(a)]
        for _ in range(steps):
            powers.append(a @ powers[-1])
        blocks = torch.stack(powers[steps - 1 :: -1], dim=1) @ b[:, None]  # (B, N, n, m): A^{N-1-j} B
        g = blocks.permute(0, 2, 1, 3).reshape(-1, n, steps * m)
        weighted = self.weight_inv.to(torch.float64) @ blocks.transpose(-1, -2)  # (B, N, m, n): R⁻¹ G_j'
        gram = (blocks @ weighted).sum(dim=1)  # (B, n, n)
        eye_n = torch.eye(n, dtype=torch.float64, device=horizon.device)
        d = torch.rsqrt((gram * eye_n).sum(-1))  # Jacobi scaling: unit diagonal, trace n
        scaled = gram * d[:, :, None] * d[:, None, :]
        x = (eye_n / n).expand_as(scaled)
        for _ in range(self.inverse_iterations):
            x = x @ (2 * eye_n - scaled @ x)
        inverse = x * d[:, :, None] * d[:, None, :]
        return powers[steps], g, weighted.reshape(-1, steps * m, n) @ inverse

    def _project(self, u: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return u - (u @ self.terminal_map - goal) @ self.correction

    def prepare(self, problems: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """What the projection of ``problems`` needs besides the controls, to reuse across calls on
        the same problems (TRC's outer cycles): horizon-aware, ``(P, c)`` with ``P = I - C G``
        ``(B, N*m, N*m)`` and ``c = C (r - A^N x_0)`` ``(B, N*m, 1)`` in float64; fixed-horizon or
        not set up, ``None``."""
        if not self.horizon_aware or self.inverse_iterations == 0:
            return None
        n = self.state_dim
        p = problems.to(torch.float64)
        free, g, corr = self._maps(p[:, 2 * n])
        goal = p[:, n : 2 * n] - (free @ p[:, :n, None]).squeeze(-1)
        # u - C (G u - goal) = P u + c: one matmul per alternation
        dim = self.num_steps * self.control_dim
        keep = torch.eye(dim, dtype=torch.float64, device=p.device) - corr @ g
        return keep, corr @ goal[:, :, None]

    def _forward_horizons(
        self, problems: torch.Tensor, controls: torch.Tensor, prepared: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        prepared = self.prepare(problems) if prepared is None else prepared
        if prepared is None:  # no system set: the identity
            return controls
        keep, shift = prepared
        limit = self.limit.to(torch.float64)
        u = keep @ controls.reshape(controls.shape[0], -1, 1).to(torch.float64) + shift
        for _ in range(self.iterations):
            u = keep @ torch.clamp(u, -limit, limit) + shift
        return torch.clamp(u, -limit, limit).to(controls.dtype).view(-1, self.num_steps, self.control_dim)

    def forward(
        self,
        problems: torch.Tensor,
        controls: torch.Tensor,
        prepared: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The projected controls ``(B, N, m)`` (``prepared``: :meth:`prepare` of these problems)."""
        if self.horizon_aware:
            return self._forward_horizons(problems, controls, prepared)
        n = self.state_dim
        goal = problems[:, n : 2 * n] - problems[:, :n] @ self.free_map
        u = self._project(controls.reshape(controls.shape[0], -1), goal)
        for _ in range(self.iterations):
            u = self._project(torch.clamp(u, -self.limit, self.limit), goal)
        return torch.clamp(u, -self.limit, self.limit).view(-1, self.num_steps, self.control_dim)
