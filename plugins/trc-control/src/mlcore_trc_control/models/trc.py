"""TinyRecursiveControl (TRC): a tiny recursive-reasoning network that outputs control sequences.

In the spirit of Tiny Recursive Models (TRM), one shared tiny network ``core`` refines a latent
reasoning state ``z`` and a current answer ``y``; as in TRM, ``y`` is kept as an embedding of the
control sequence and every cycle's answer is decoded by a linear head to controls ``(N, m)``::

    e = encode([x_0, r, T])                       # the problem
    y = answer_init(e);  z = z_init
    for t in 1..T_outer:                          # outer cycles (each one is supervised)
        for i in 1..n_inner:                      # inner cycles: reason
            z = core(e + y + z)
        y = core(y + z)                           # update the answer (same core, no problem input)
        controls_t = head(y)

``core`` is a stack of pre-norm residual MLP blocks closed by a LayerNorm, so ``y`` and ``z`` keep a
fixed scale for any number of cycles. (Feeding the answer back as explicit controls with a
residual update ``y + head(...)`` was tried first: the third cycle came out 5x worse than the
second; the latent answer gives cycles of even quality.)

Training uses **deep supervision**: the loss is taken on every outer cycle's answer.
Gradient choice (``gradient``):

- ``per_cycle`` (default): the carried ``(y, z)`` is detached at the start of each outer cycle, so
  each cycle's loss back-propagates through that cycle's inner recursion only (as TRM/HRM detach
  between supervision steps). Memory is that of one cycle and training is stable: every cycle
  learns to improve whatever state it is handed.
- ``full``: back-propagation through all outer cycles (every cycle still supervised).
- ``last``: the first ``T_outer - 1`` cycles run without gradient and only the last answer is
  supervised (TRM's single-step recipe; no deep supervision).

Cycle losses are combined with ``cycle_weighting``: ``balanced`` weights each by its detached
inverse (every cycle's *relative* error counts equally, so the small errors of late cycles are
not drowned by the first cycle's), ``uniform`` takes the plain mean.

Optional rollout terms: ``rollout_weight * mean ||x_N - r||²`` and
``cost_weight * mean |J(u) - J(u*)| / J(u*)`` with the stated quadratic cost ``J``, taken on the
rollout of the final cycle's answer through the true dynamics (earlier cycles: imitation only).
:meth:`set_system` sets them up: a linear system is held in buffers (exact rollout); a nonlinear
one (pendulum, Van der Pol) gets a differentiable RK4 simulator
(:class:`~mlcore_trc_control.nonlinear.simulator.TorchSimulator`) with each problem's own
horizon, and with ``output_bound`` the controls are mapped into the box by ``limit * tanh``.

Example::

    from mlcore_trc_control.models.trc import TinyRecursiveControl

    model = TinyRecursiveControl.create_medium()          # ~530K parameters
    controls = model(problems)                            # (B, 2n+1) -> (B, N, m)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mlcore_trc_control.models.config import SIZES, TRCConfig
from mlcore_trc_control.models.projection import TerminalProjection

__all__ = ["SIZES", "TRCConfig", "TinyRecursiveControl"]


class _Block(nn.Module):
    """Pre-norm residual MLP block: ``x + W2 act(W1 LN(x))``."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.SiLU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # functional calls of the same submodules: identical maths, a third of the per-call Python
        # overhead, which dominates at batch size 1 (the core runs 12 times per forward pass)
        norm = self.norm
        h = F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
        h = F.linear(F.silu(F.linear(h, self.fc1.weight, self.fc1.bias)), self.fc2.weight, self.fc2.bias)
        return x + (h if self.drop is None else self.drop(h))


class TinyRecursiveControl(nn.Module):
    """Recursive refinement of a control sequence by one shared tiny network (see the module docstring)."""

    # buffers registered in __init__ (declared so type checkers know they are tensors)
    input_mean: torch.Tensor
    input_std: torch.Tensor
    control_scale: torch.Tensor
    sys_A: torch.Tensor
    sys_B: torch.Tensor
    sys_Q: torch.Tensor
    sys_R: torch.Tensor
    sys_Qf: torch.Tensor
    horizon: torch.Tensor
    output_limit: torch.Tensor
    _simulator: Any

    def __init__(self, config: TRCConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or TRCConfig()
        hp = config.resolved()
        self.latent_dim, self.hidden_dim = hp["latent_dim"], hp["hidden_dim"]
        self.num_outer_cycles, self.num_inner_cycles = hp["num_outer_cycles"], hp["num_inner_cycles"]
        n, m, steps = config.state_dim, config.control_dim, config.num_steps
        self.state_dim, self.control_dim, self.num_steps = n, m, steps
        self.input_dim = 2 * n + 1
        d, out = self.latent_dim, steps * m
        self.encoder = nn.Sequential(nn.Linear(self.input_dim, d), nn.SiLU(), nn.Linear(d, d), nn.LayerNorm(d))
        self.answer_init = nn.Linear(d, d)
        self.z_init = nn.Parameter(torch.zeros(d))
        blocks: list[nn.Module] = [_Block(d, self.hidden_dim, config.dropout) for _ in range(hp["num_layers"])]
        self.core = nn.Sequential(*blocks, nn.LayerNorm(d))
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, out))
        # Normalisation (set from the data by set_normalisation; saved with the weights).
        self.register_buffer("input_mean", torch.zeros(self.input_dim))
        self.register_buffer("input_std", torch.ones(self.input_dim))
        self.register_buffer("control_scale", torch.ones(m))
        # The system, for the optional rollout losses (set by set_system; default: the double integrator).
        dt = 5.0 / steps
        a, b, q = torch.eye(n), torch.zeros(n, m), torch.eye(n)
        if n == 2 and m == 1:
            a = torch.tensor([[1.0, dt], [0.0, 1.0]])
            b = torch.tensor([[dt * dt / 2], [dt]])
            q = torch.diag(torch.tensor([10.0, 5.0]))
        self.register_buffer("sys_A", a)
        self.register_buffer("sys_B", b)
        self.register_buffer("sys_Q", q)
        self.register_buffer("sys_R", 0.1 * torch.eye(m))
        self.register_buffer("sys_Qf", 20.0 * q)
        self.register_buffer("horizon", torch.tensor(5.0))
        self.projection = (
            TerminalProjection(n, m, steps, config.projection_iterations, config.projection_horizons)
            if config.terminal_projection
            else None
        )
        # the box of output_bound (0 = none until set_system); a buffer, so checkpoints restore it
        self.register_buffer("output_limit", torch.tensor(0.0))
        # a nonlinear system's differentiable simulator, for the rollout losses only (not a
        # submodule: it holds no weights and must not change the state_dict's keys)
        object.__setattr__(self, "_simulator", None)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any, **kwargs: Any) -> None:
        # checkpoints written before the output bound existed lack its buffer: keep the current one
        state_dict.setdefault(prefix + "output_limit", self.output_limit.detach().clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def create_small(cls, **overrides: Any) -> TinyRecursiveControl:
        """~105K parameters; ``overrides`` are :class:`TRCConfig` fields."""
        return cls(TRCConfig(size="small", **overrides))

    @classmethod
    def create_medium(cls, **overrides: Any) -> TinyRecursiveControl:
        """~530K parameters; ``overrides`` are :class:`TRCConfig` fields."""
        return cls(TRCConfig(size="medium", **overrides))

    @classmethod
    def create_large(cls, **overrides: Any) -> TinyRecursiveControl:
        """~2.6M parameters; ``overrides`` are :class:`TRCConfig` fields."""
        return cls(TRCConfig(size="large", **overrides))

    def num_parameters(self) -> int:
        """Trainable parameter count."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ------------------------------------------------------------------ data hooks
    @torch.no_grad()
    def set_normalisation(self, problems: torch.Tensor, controls: torch.Tensor) -> None:
        """Set input mean/std and the control scale from training tensors ``(M, 2n+1)``, ``(M, N, m)``."""
        std = problems.std(dim=0)
        self.input_mean.copy_(problems.mean(dim=0))
        self.input_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))
        scale = controls.reshape(-1, self.control_dim).std(dim=0)
        self.control_scale.copy_(torch.where(scale > 1e-6, scale, torch.ones_like(scale)))

    @torch.no_grad()
    def set_system(self, system: Any) -> None:
        """Set up the rollout losses (and projection / output bound) for a linear or nonlinear system."""
        self.output_limit.fill_(float(system.control_limit))
        if getattr(system, "kind", "linear") == "nonlinear":
            from mlcore_trc_control.nonlinear.simulator import TorchSimulator

            object.__setattr__(self, "_simulator", TorchSimulator(system))
            for name in ("Q", "R", "Qf"):
                getattr(self, f"sys_{name}").copy_(torch.as_tensor(getattr(system, name), dtype=torch.float32))
            self.horizon.fill_(float(system.time_horizon))
            return
        object.__setattr__(self, "_simulator", None)
        for name in ("A", "B", "Q", "R", "Qf"):
            getattr(self, f"sys_{name}").copy_(torch.as_tensor(getattr(system, name), dtype=torch.float32))
        self.horizon.fill_(float(system.time_horizon))
        if self.projection is not None:
            self.projection.set_system(system)

    def example_input(self, batch_size: int = 2) -> torch.Tensor:
        """A batch of plausible problems ``(batch_size, 2n+1)`` for export checks."""
        g = torch.Generator().manual_seed(0)
        states = (torch.rand(batch_size, 2 * self.state_dim, generator=g) * 4 - 2).to(self.input_mean.device)
        horizon = self.horizon.expand(batch_size, 1).to(states)
        if self.config.terminal_projection and self.config.projection_horizons is not None:
            low, high = self.config.projection_horizons  # horizons across the projection's range
            horizon = low + (high - low) * torch.rand(batch_size, 1, generator=g).to(states)
        return torch.cat([states, horizon], dim=1)

    # ------------------------------------------------------------------ forward
    def _cycle(self, e: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One outer cycle: ``n_inner`` reasoning updates of ``z``, then one answer update of ``y``."""
        for _ in range(self.num_inner_cycles):
            z = self.core(e + y + z)
        return self.core(y + z), z

    def decode(self, y: torch.Tensor, problems: torch.Tensor, prepared: Any = None) -> torch.Tensor:
        """Controls ``(B, N, m)`` from the answer embedding ``y`` (projected onto ``x_N = r`` and the
        box when ``terminal_projection`` is on; ``prepared``: the projection's ``prepare(problems)``,
        reused across outer cycles)."""
        scale = self.control_scale.repeat(self.num_steps)
        controls = (self.head(y) * scale).view(-1, self.num_steps, self.control_dim)
        if self.config.output_bound:
            limit = self.output_limit.clamp_min(1e-6)  # unset (0): a very narrow box, set_system sets it
            controls = limit * torch.tanh(controls / limit)
        return controls if self.projection is None else self.projection(problems, controls, prepared)

    def forward_cycles(
        self, problems: torch.Tensor, num_outer_cycles: int | None = None, gradient: str = "full"
    ) -> list[torch.Tensor]:
        """Every outer cycle's controls ``(B, N, m)``; ``gradient`` as in :class:`TRCConfig`."""
        cycles = num_outer_cycles or self.num_outer_cycles
        e = self.encoder((problems - self.input_mean) / self.input_std)
        y = self.answer_init(e)
        z = self.z_init.expand_as(e)
        # the horizon-aware projection's per-problem maps, once for every cycle (None otherwise)
        prepared = None if self.projection is None else self.projection.prepare(problems)
        outputs = []
        for t in range(cycles):
            if gradient == "per_cycle" and t > 0:
                y, z = y.detach(), z.detach()
            if gradient == "last" and t < cycles - 1:
                with torch.no_grad():
                    y, z = self._cycle(e, y, z)
            else:
                y, z = self._cycle(e, y, z)
            outputs.append(self.decode(y, problems, prepared))
        return outputs

    def final_answer(self, problems: torch.Tensor, num_outer_cycles: int | None = None) -> torch.Tensor:
        """The last outer cycle's controls ``(B, N, m)``; same as ``forward_cycles(...)[-1]`` (full
        gradient) but decodes only the final answer, which is all inference needs."""
        e = self.encoder((problems - self.input_mean) / self.input_std)
        y = self.answer_init(e)
        z = self.z_init.expand_as(e)
        for _ in range(num_outer_cycles or self.num_outer_cycles):
            y, z = self._cycle(e, y, z)
        return self.decode(y, problems)

    def forward(self, problems: torch.Tensor) -> torch.Tensor:
        """Controls ``(B, N, m)`` for problems ``(B, 2n+1) = [x_0, r, T]`` after all outer cycles."""
        return self.final_answer(problems)

    @torch.no_grad()
    def predict(self, problems: torch.Tensor, num_outer_cycles: int | None = None) -> torch.Tensor:
        """Inference with an optional number of outer cycles (test-time iteration sweep)."""
        return self.final_answer(problems, num_outer_cycles)

    @torch.no_grad()
    def predict_adaptive(
        self, problems: torch.Tensor, tolerance: float, max_cycles: int | None = None, min_cycles: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Adaptive halting: ``(controls (B, N, m), cycles used (B,))``.

        Each problem stops after the first outer cycle ``t >= min_cycles`` whose answer differs
        from the previous one (cycle 0: the decoded initial answer) by less than ``tolerance``,
        measured as the RMS of the change in units of the control scale; at most ``max_cycles``
        (default: the trained number). ``tolerance = inf`` runs ``min_cycles``, ``tolerance = 0``
        every cycle. The loop ends as soon as every problem of the batch has halted (at batch
        size 1, fewer cycles are less compute).
        """
        limit = max_cycles or self.num_outer_cycles
        e = self.encoder((problems - self.input_mean) / self.input_std)
        y = self.answer_init(e)
        z = self.z_init.expand_as(e)
        scale = self.control_scale.repeat(self.num_steps).view(1, self.num_steps, self.control_dim)
        prepared = None if self.projection is None else self.projection.prepare(problems)
        out = self.decode(y, problems, prepared)
        used = torch.zeros(problems.shape[0], dtype=torch.long, device=problems.device)
        running = torch.ones(problems.shape[0], dtype=torch.bool, device=problems.device)
        for t in range(1, limit + 1):
            y, z = self._cycle(e, y, z)
            controls = self.decode(y, problems, prepared)
            change = (((controls - out) / scale) ** 2).mean(dim=(1, 2)).sqrt()
            out = torch.where(running[:, None, None], controls, out)
            used = torch.where(running, torch.full_like(used, t), used)
            if t >= min_cycles:
                running = running & ~(change < tolerance)
            if not bool(running.any()):
                break
        return out, used

    # ------------------------------------------------------------------ loss
    def rollout(self, problems: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        """Differentiable states ``(B, N+1, n)``: exact for the buffered linear system, RK4 through
        the simulator for a nonlinear one."""
        if self._simulator is not None:
            return self._simulator.rollout(problems, controls)  # type: ignore[no-any-return]
        x = problems[:, : self.state_dim]
        states = [x]
        for k in range(controls.shape[1]):
            x = x @ self.sys_A.T + controls[:, k] @ self.sys_B.T
            states.append(x)
        return torch.stack(states, dim=1)

    def lqr_cost(self, problems: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        """The stated quadratic tracking cost ``J`` of each problem ``(B,)``."""
        states = self.rollout(problems, controls)
        err = states - problems[:, None, self.state_dim : 2 * self.state_dim]
        stage = torch.einsum("bki,ij,bkj->b", err[:, :-1], self.sys_Q, err[:, :-1])
        effort = torch.einsum("bki,ij,bkj->b", controls, self.sys_R, controls)
        terminal = torch.einsum("bi,ij,bj->b", err[:, -1], self.sys_Qf, err[:, -1])
        return stage + effort + terminal

    def _answer_loss(self, problems: torch.Tensor, y: torch.Tensor, target: torch.Tensor, loss_fn: Any) -> torch.Tensor:
        loss = loss_fn(y, target)
        cfg = self.config
        if cfg.rollout_weight > 0:
            final = self.rollout(problems, y)[:, -1]
            goal = problems[:, self.state_dim : 2 * self.state_dim]
            loss = loss + cfg.rollout_weight * ((final - goal) ** 2).sum(dim=1).mean()
        if cfg.cost_weight > 0:
            ref = self.lqr_cost(problems, target).clamp_min(1e-6)
            loss = loss + cfg.cost_weight * ((self.lqr_cost(problems, y) - ref).abs() / ref).mean()
        return loss

    def compute_loss(self, batch: Any, loss_fn: Any = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Deep-supervised loss over the outer cycles; returns ``(loss, {"final_mse", "first_mse"})``.

        ``loss_fn(prediction, target)`` is the per-answer loss (MSE when ``None``).
        """
        problems, target = batch
        if loss_fn is None:
            loss_fn = nn.functional.mse_loss
        gradient = self.config.gradient if self.training else "full"
        outputs = self.forward_cycles(problems, gradient=gradient)
        supervised = outputs if (self.config.deep_supervision and gradient != "last") else outputs[-1:]
        # the rollout terms (if any) on the final answer only: a nonlinear rollout is N RK4 steps of
        # small ops, and taking it on every cycle tripled the step time for no measured gain
        last = len(supervised) - 1
        losses = torch.stack(
            [
                self._answer_loss(problems, y, target, loss_fn) if t == last else loss_fn(y, target)
                for t, y in enumerate(supervised)
            ]
        )
        if self.config.cycle_weighting == "balanced" and len(supervised) > 1:
            inv = 1.0 / losses.detach().clamp_min(1e-12)
            loss = (losses * inv / inv.sum()).sum()
        else:
            loss = losses.mean()
        with torch.no_grad():
            extras = {
                "final_mse": float(nn.functional.mse_loss(outputs[-1], target)),
                "first_mse": float(nn.functional.mse_loss(outputs[0], target)),
            }
        return loss, extras
