"""The ``lqr`` data module: optimal-control problems and their expert solutions.

One data set is one ``.npz`` file (``lqr_dataset.npz``) holding, for ``M`` problems of a linear
system with ``n`` states, ``m`` controls and ``N`` steps:

===========================  ==============  =====================================================
key                          shape           meaning
===========================  ==============  =====================================================
``initial_states``           ``(M, n)``      ``x_0``
``target_states``            ``(M, n)``      ``r`` (generally not an equilibrium)
``control_sequences``        ``(M, N, m)``   the expert's optimal controls (the labels)
``state_trajectories``       ``(M, N+1, n)`` the states they produce
``optimal_costs``            ``(M,)``        the stated cost ``J`` of the expert's controls
``lqr_control_sequences``    ``(M, N, m)``   the exact (box-constrained) LQR optimum of ``J``
``lqr_costs``                ``(M,)``        its cost (<= any other controls' cost)
``lqr_terminal_errors``      ``(M,)``        its ``||x_N - r||``
``metadata``                 ``()``          JSON: the problem definition (A, B, Q, R, Qf, dt, N,
                                             limit), ranges, seed, which expert made the labels
===========================  ==============  =====================================================

Items handed to the trainer are ``(problem, controls)`` with ``problem = [x_0, r, T]`` (``2n+1``
values, ``T`` = time horizon in seconds) and ``controls`` of shape ``(N, m)``.

Example::

    from mlcore_trc_control.data import LQRData, LQRDataConfig

    data = LQRData(LQRDataConfig(num_samples=1000, seed=0)).prepare()
    problem, controls = data.train_set()[0]
    data.generate(Path("data/lqr_train"))   # -> data/lqr_train/lqr_dataset.npz
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlcore.config import in_range, non_negative, one_of, positive
from mlcore.data import DataModule
from mlcore.errors import ConfigError, DataError
from mlcore.io import atomic_write
from mlcore_trc_control.lqr.solvers import EXPERTS, ExpertSolution, solve_expert, success_rate
from mlcore_trc_control.lqr.systems import SYSTEMS, LinearSystem, build_system, default_ranges
from mlcore_trc_control.nonlinear.systems import (
    NONLINEAR_SYSTEMS,
    NonlinearSystem,
    build_nonlinear_system,
    is_nonlinear,
    system_from_dict,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

__all__ = ["DATA_FILE", "FORMAT", "LQRData", "LQRDataConfig", "LQRProblemSet", "generate_problem_set"]

DATA_FILE = "lqr_dataset.npz"
FORMAT = "mlcore-trc-control/lqr-dataset"
FORMAT_VERSION = 1
ARRAY_KEYS = (
    "initial_states",
    "target_states",
    "control_sequences",
    "state_trajectories",
    "optimal_costs",
    "lqr_control_sequences",
    "lqr_costs",
    "lqr_terminal_errors",
)


#: Experts a nonlinear system can be labelled by: ``optimal`` = multiple shooting (CasADi + IPOPT),
#: ``lqr`` = finite-horizon LQR on the linearisation, in closed loop.
NONLINEAR_EXPERTS = ("optimal", "lqr")


def _optional_positive_int(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    if value is not None:
        positive(inst, attribute, value)


def _optional_list(inst: Any, attribute: attrs.Attribute, value: Any) -> None:  # type: ignore[type-arg]
    if value is not None and not isinstance(value, list | tuple):
        raise ValueError(f"{attribute.name}={value!r} must be a list")


@attrs.define
class LQRDataConfig:
    """Config of the ``lqr`` data module (section ``data`` of the ``trc`` pipeline).

    Problem (``None`` = the system's default; the double integrator's are given):
        system: ``double_integrator`` | ``planar_double_integrator`` | ``cartpole`` | ``custom``
            (linear) or ``pendulum`` | ``vanderpol`` | ``rocket`` (nonlinear, RK4; see
            :mod:`mlcore_trc_control.nonlinear.systems`).
        num_steps: control steps ``N`` (15; 50 for the nonlinear systems).
        time_horizon: seconds (5.0); ``dt = time_horizon / num_steps``.
        q, r: stage weights, a diagonal list or a full matrix ([10, 5] and [0.1]).
        qf: terminal weight matrix; default ``terminal_weight * Q``.
        terminal_weight: 20 (the pendulum's: 100, as in the reference).
        control_limit: box limit ``|u| <= control_limit`` (4.0); 0 = none.
        a, b, continuous: the matrices of a ``custom`` system (continuous ones are ZOH-discretised).
        params: physical parameters of a nonlinear system (e.g. ``{mass = 1.0, friction = 0.1}``
            for the pendulum, ``{mu = 1.0}`` for Van der Pol).
        horizon_range: ``[T_min, T_max]``: every problem draws its own horizon uniformly from it
            (``dt = T / num_steps``; a linear system is re-discretised exactly per problem), so the
            horizon input varies in training. Not for a ``custom`` system given in discrete time.
        initial_range, target_range: half-widths of the uniform boxes ``x_0, r`` are drawn from
            (one value for every state, or one per state; [2, 2] and [2, 2]); the rocket's initial
            box is centred on its nominal descent state (400 m up, 20 m/s down, 2000 kg).
        expert: ``optimal`` (default: the minimiser of the stated cost with ``x_N = r`` and the
            box, an exact QP; for a nonlinear system, direct multiple shooting with CasADi +
            IPOPT), ``auto`` (the box-constrained LQR optimum if it reaches
            ``required_success``, else ``optimal``), ``lqr`` (box-constrained LQR),
            ``lqr_unconstrained`` (plain LQR) or ``min_energy``; nonlinear systems take ``optimal``
            or ``lqr`` (LQR on the linearisation, closed loop).
        success_threshold: terminal error counted as success (0.1).
        required_success: success rate the ``auto`` expert must reach to use LQR (0.999).
        expert_neighbours: nonlinear ``optimal`` expert: after its pass in problem order, re-solve
            every problem from its nearest solved neighbours' solutions (and mirrored ones) and keep
            the cheapest (:func:`~mlcore_trc_control.nonlinear.expert.neighbour_restarts`; 5;
            0 = one pass, about 5x faster on the pendulum but with labels from mixed local optima).
        expert_library: with it, also start every problem once from the solutions of this many
            problems drawn from the whole set (and their negations; 0 = off; see
            :func:`~mlcore_trc_control.nonlinear.expert.neighbour_restarts`).
        expert_library_problems: try the library on this many problems only (drawn at random,
            solved first; 0 = every problem): a route they find reaches the rest through the
            neighbour restarts, at a fraction of the solves.

    ``seed == test_seed`` makes the test problems the training problems; a warning is logged.

    Data:
        num_samples, seed: size and seed of the generated training set (10000, 42).
        val_fraction: share of the training set held out for validation (0.1).
        path: an existing ``.npz`` file (or a folder holding ``lqr_dataset.npz``) to load
            instead of generating; it must define the same problem as this config.
        test_path: an existing test file; else ``test_num_samples`` problems are generated with
            ``test_seed`` (1000, 123); ``test_num_samples=0`` means no test split.
    """

    system: str = attrs.field(default="double_integrator", validator=one_of(*SYSTEMS, "custom", *NONLINEAR_SYSTEMS))
    num_steps: int | None = attrs.field(default=None, validator=_optional_positive_int)
    time_horizon: float | None = attrs.field(default=None, validator=in_range(0, low_open=True))
    q: list[Any] | None = attrs.field(default=None, validator=_optional_list)
    r: list[Any] | None = attrs.field(default=None, validator=_optional_list)
    qf: list[Any] | None = attrs.field(default=None, validator=_optional_list)
    terminal_weight: float | None = attrs.field(default=None, validator=attrs.validators.optional(non_negative))
    control_limit: float | None = attrs.field(default=None, validator=in_range(0))
    a: list[Any] | None = attrs.field(default=None, validator=_optional_list)
    b: list[Any] | None = attrs.field(default=None, validator=_optional_list)
    continuous: bool = False
    params: dict[str, float] | None = None
    horizon_range: list[float] | None = None
    initial_range: list[float] | None = None
    target_range: list[float] | None = None
    expert: str = attrs.field(default="optimal", validator=one_of(*EXPERTS))
    success_threshold: float = attrs.field(default=0.1, validator=in_range(0, low_open=True))
    required_success: float = attrs.field(default=0.999, validator=in_range(0, 1))
    expert_neighbours: int = attrs.field(default=5, validator=non_negative)
    expert_library: int = attrs.field(default=0, validator=non_negative)
    expert_library_problems: int = attrs.field(default=0, validator=non_negative)
    num_samples: int = attrs.field(default=10000, validator=positive)
    seed: int = 42
    val_fraction: float = attrs.field(default=0.1, validator=in_range(0, 1, high_open=True))
    path: str | None = None
    test_path: str | None = None
    test_num_samples: int = attrs.field(default=1000, validator=non_negative)
    test_seed: int = 123

    @property
    def nonlinear(self) -> bool:
        """Whether ``system`` names a nonlinear system."""
        return self.system in NONLINEAR_SYSTEMS

    def build_system(self) -> LinearSystem | NonlinearSystem:
        """The system this config defines (ConfigError naming ``data.*`` fields)."""
        if self.nonlinear:
            for name in ("a", "b"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"data.{name} is only for system='custom', not {self.system!r}")
            if self.expert not in NONLINEAR_EXPERTS:
                raise ConfigError(
                    f"data.expert={self.expert!r} is not available for the nonlinear system {self.system!r} "
                    f"(allowed: {', '.join(NONLINEAR_EXPERTS)})"
                )
            self.horizons_bounds()
            return build_nonlinear_system(
                self.system,
                num_steps=self.num_steps,
                time_horizon=self.time_horizon,
                q=self.q,
                r=self.r,
                qf=self.qf,
                terminal_weight=self.terminal_weight,
                control_limit=self.control_limit,
                params=self.params,
                where="data.",
            )
        if self.params is not None:
            raise ConfigError(
                f"data.params is only for the nonlinear systems ({', '.join(NONLINEAR_SYSTEMS)}), not {self.system!r}"
            )
        if self.horizons_bounds() is not None and self.system == "custom" and not self.continuous:
            raise ConfigError(
                "data.horizon_range needs a continuous-time model: a custom system given in discrete time "
                "has one horizon (set data.continuous=true with continuous a, b)"
            )
        return build_system(
            self.system,
            num_steps=15 if self.num_steps is None else self.num_steps,
            time_horizon=self.time_horizon,
            q=self.q,
            r=self.r,
            qf=self.qf,
            terminal_weight=20.0 if self.terminal_weight is None else self.terminal_weight,
            control_limit=self.control_limit,
            a=self.a,
            b=self.b,
            continuous=self.continuous,
            where="data.",
        )

    def horizons_bounds(self) -> tuple[float, float] | None:
        """``(T_min, T_max)`` of ``horizon_range``, or ``None`` (ConfigError on a bad range)."""
        if self.horizon_range is None:
            return None
        values = list(self.horizon_range)
        if len(values) != 2 or not all(isinstance(v, int | float) for v in values):
            raise ConfigError(f"data.horizon_range={self.horizon_range!r}: expected [T_min, T_max] in seconds")
        low, high = float(values[0]), float(values[1])
        if not (0 < low <= high and np.isfinite(high)):
            raise ConfigError(f"data.horizon_range={self.horizon_range!r}: need 0 < T_min <= T_max")
        return low, high

    def ranges(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Half-widths ``(initial, target)`` of the sampling boxes, each ``(n,)``."""
        if self.nonlinear:
            t = NONLINEAR_SYSTEMS[self.system]()
            default_init, default_target = t.initial_range, t.target_range
        else:
            default_init, default_target = default_ranges(self.system, n)
        out = []
        for name, value, default in (
            ("initial_range", self.initial_range, default_init),
            ("target_range", self.target_range, default_target),
        ):
            arr = np.asarray(default if value is None else value, dtype=np.float64).reshape(-1)
            if arr.size == 1:
                arr = np.full(n, float(arr[0]))
            if arr.shape != (n,) or not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ConfigError(f"data.{name}={value!r}: expected 1 or {n} non-negative numbers")
            out.append(arr)
        return out[0], out[1]


def _generate_command(path: Path | None, num_samples: int, seed: int) -> str:
    out = "data/lqr_train"
    if path is not None:
        out = str(path.parent if path.suffix == ".npz" else path)
    return f"mlcore data generate lqr --num-samples {num_samples} --seed {seed} --out {out}"


@attrs.define(eq=False)
class LQRProblemSet:
    """A batch of problems of one system with their expert labels (NumPy, float64)."""

    system: LinearSystem | NonlinearSystem
    initial_states: np.ndarray
    target_states: np.ndarray
    control_sequences: np.ndarray
    state_trajectories: np.ndarray
    optimal_costs: np.ndarray
    lqr_control_sequences: np.ndarray
    lqr_costs: np.ndarray
    lqr_terminal_errors: np.ndarray
    metadata: dict[str, Any] = attrs.field(factory=dict)
    time_horizons: np.ndarray | None = None  # (M,) per-problem horizons (nonlinear, horizon_range)

    def __len__(self) -> int:
        return int(self.initial_states.shape[0])

    @property
    def expert(self) -> str:
        """Which expert made ``control_sequences`` (one of :data:`~mlcore_trc_control.lqr.solvers.EXPERTS`)."""
        return str(self.metadata.get("expert", "unknown"))

    @property
    def expert_terminal_errors(self) -> np.ndarray:
        """``||x_N - r||`` of the expert's labels."""
        return self.terminal_errors(self.state_trajectories)

    def terminal_errors(self, states: np.ndarray) -> np.ndarray:
        """``||x_N - r||`` per problem ``(M,)`` of trajectories ``(M, N+1, n)`` (over the tracked
        states: the rocket's mass has no target)."""
        if is_nonlinear(self.system):
            return self.system.terminal_error(states[:, -1], self.target_states)  # type: ignore[union-attr]
        return np.linalg.norm(states[:, -1] - self.target_states, axis=1)  # type: ignore[no-any-return]

    def problems(self) -> np.ndarray:
        """Model inputs ``(M, 2n+1)``: ``[x_0, r, time_horizon]``."""
        horizon = self.horizons()[:, None]
        return np.concatenate([self.initial_states, self.target_states, horizon], axis=1)

    def horizons(self) -> np.ndarray:
        """Per-problem horizons ``(M,)`` in seconds (the system's when not drawn per problem)."""
        if self.time_horizons is not None:
            return self.time_horizons
        return np.full(len(self), self.system.time_horizon)

    def rollout(self, controls: np.ndarray) -> np.ndarray:
        """States ``(M, N+1, n)`` of ``controls (M, N, m)`` from these problems' initial states, each
        with its own horizon (nonlinear: RK4; linear: the exact ZOH of that horizon)."""
        if is_nonlinear(self.system):
            return self.system.rollout(self.initial_states, controls, self.horizons())  # type: ignore[call-arg]
        if self.time_horizons is None:
            return self.system.rollout(self.initial_states, controls)
        system = self.system
        assert isinstance(system, LinearSystem)
        states = np.empty((len(self), controls.shape[1] + 1, system.n))
        for horizon, index in _by_horizon(self.time_horizons):
            states[index] = system.with_horizon(horizon).rollout(self.initial_states[index], controls[index])
        return states

    def cost(self, states: np.ndarray, controls: np.ndarray) -> np.ndarray:
        """The stated cost ``J`` per problem ``(M,)`` (the weights do not depend on the horizon)."""
        return self.system.cost(states, controls, self.target_states)

    def subset(self, index: np.ndarray) -> LQRProblemSet:
        """The problems at ``index``."""
        extra = {} if self.time_horizons is None else {"time_horizons": self.time_horizons[index]}
        return attrs.evolve(self, **{k: getattr(self, k)[index] for k in ARRAY_KEYS}, **extra)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(problems (M, 2n+1), controls (M, N, m))`` as float32 tensors."""
        import torch

        return (
            torch.as_tensor(self.problems(), dtype=torch.float32),
            torch.as_tensor(self.control_sequences, dtype=torch.float32),
        )

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` atomically (``metadata`` as a JSON string); returns the path."""
        arrays = {k: np.asarray(getattr(self, k)) for k in ARRAY_KEYS}
        if self.time_horizons is not None:
            arrays["time_horizons"] = np.asarray(self.time_horizons)
        meta = {**self.metadata, "problem": self.system.to_dict()}
        arrays["metadata"] = np.array(json.dumps(meta))
        return atomic_write(Path(path), lambda fh: np.savez_compressed(fh, **arrays))  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path, *, num_samples: int = 10000, seed: int = 42) -> LQRProblemSet:
        """Read and validate a data file; every problem raises a one-line :class:`DataError`.

        ``num_samples`` and ``seed`` only shape the suggested ``mlcore data generate`` command.
        """
        p = Path(path)
        if p.is_dir() or p.suffix != ".npz":
            p = p / DATA_FILE
        command = _generate_command(p, num_samples, seed)
        if not p.is_file():
            raise DataError(f"{p}: data file not found; create it with `{command}`")
        try:
            with np.load(p, allow_pickle=False) as npz:
                raw = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(
                f"{p}: not a readable .npz file ({type(exc).__name__}); recreate it with `{command}`"
            ) from None
        missing = [k for k in (*ARRAY_KEYS, "metadata") if k not in raw]
        if missing:
            raise DataError(
                f"{p}: missing array(s) {', '.join(missing)}; is it an lqr data set? recreate it with `{command}`"
            )
        try:
            meta = json.loads(str(raw["metadata"][()]))
            if meta.get("format") != FORMAT:
                raise ValueError("format")
            system = system_from_dict(meta["problem"])
        except (ValueError, KeyError, TypeError):
            raise DataError(
                f"{p}: metadata is missing or not an lqr problem definition; recreate it with `{command}`"
            ) from None
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise DataError(
                f"{p}: written by a newer mlcore-trc-control (format {meta['format_version']}); upgrade the plugin"
            )
        count = raw["initial_states"].shape[0] if raw["initial_states"].ndim else -1
        n, m, steps = system.n, system.m, system.num_steps
        expected = {
            "initial_states": (count, n),
            "target_states": (count, n),
            "control_sequences": (count, steps, m),
            "state_trajectories": (count, steps + 1, n),
            "optimal_costs": (count,),
            "lqr_control_sequences": (count, steps, m),
            "lqr_costs": (count,),
            "lqr_terminal_errors": (count,),
        }
        for key, shape in expected.items():
            arr = raw[key]
            if arr.shape != shape:
                raise DataError(
                    f"{p}: {key} has shape {tuple(arr.shape)}, expected {shape} "
                    f"(system {system.name!r}: n={n}, m={m}, N={steps}); recreate it with `{command}`"
                )
            if not np.issubdtype(arr.dtype, np.floating):
                raise DataError(f"{p}: {key} has dtype {arr.dtype}, expected floating point")
            if not np.all(np.isfinite(arr)):
                bad = int(np.sum(~np.isfinite(arr)))
                raise DataError(f"{p}: {key} contains {bad} NaN/inf value(s); recreate it with `{command}`")
        if count < 1:
            raise DataError(f"{p}: holds no problems; recreate it with `{command}`")
        horizons = raw.get("time_horizons")
        if horizons is not None and (
            horizons.shape != (count,) or not np.all(np.isfinite(horizons)) or np.any(horizons <= 0)
        ):
            raise DataError(
                f"{p}: time_horizons must be {count} positive finite numbers (got shape {tuple(horizons.shape)}); "
                f"recreate it with `{command}`"
            )
        arrays = {k: np.asarray(raw[k], dtype=np.float64) for k in ARRAY_KEYS}
        if horizons is not None:
            arrays["time_horizons"] = np.asarray(horizons, dtype=np.float64)
        meta.pop("problem", None)
        meta["file"] = str(p)
        return cls(system=system, metadata=meta, **arrays)


def _by_horizon(horizons: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """``(T, indices)`` for every distinct horizon."""
    values, inverse = np.unique(np.asarray(horizons, dtype=np.float64), return_inverse=True)
    return [(float(v), np.flatnonzero(inverse == i)) for i, v in enumerate(values)]


def generate_problem_set(
    system: LinearSystem | NonlinearSystem,
    num_samples: int,
    seed: int,
    initial_range: np.ndarray,
    target_range: np.ndarray,
    *,
    expert: str = "optimal",
    success_threshold: float = 0.1,
    required_success: float = 0.999,
    initial_sampler: Any = None,
    horizon_range: tuple[float, float] | None = None,
    expert_neighbours: int = 5,
    expert_library: int = 0,
    expert_library_problems: int = 0,
) -> LQRProblemSet:
    """Draw ``num_samples`` problems (uniform boxes) and label them with the expert, vectorised.

    ``initial_sampler(rng, num) -> (num, n)`` replaces the uniform initial-state box (used by the
    generalisation suite for out-of-distribution states); both give deviations from the system's
    nominal initial state (zero except for the rocket). ``horizon_range`` draws each problem's
    horizon uniformly from ``[T_min, T_max]`` (a linear system is re-discretised per problem and
    each horizon labelled by its own exact solution). ``expert_neighbours``, ``expert_library``,
    ``expert_library_problems``: see
    :class:`LQRDataConfig` (nonlinear systems only).
    """
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = system.n
    centre = system.initial_center if isinstance(system, NonlinearSystem) else np.zeros(n)
    if initial_sampler is None:
        x0 = centre + rng.uniform(-1.0, 1.0, (num_samples, n)) * initial_range
    else:
        x0 = centre + np.asarray(initial_sampler(rng, num_samples), dtype=np.float64)
    targets = rng.uniform(-1.0, 1.0, (num_samples, n)) * target_range
    if isinstance(system, NonlinearSystem):
        horizons = (
            rng.uniform(horizon_range[0], horizon_range[1], num_samples)
            if horizon_range is not None
            else np.full(num_samples, system.time_horizon)
        )
        return _nonlinear_problem_set(
            system,
            x0,
            targets,
            horizons,
            seed=seed,
            initial_range=initial_range,
            target_range=target_range,
            expert=expert,
            success_threshold=success_threshold,
            start=start,
            neighbours=expert_neighbours,
            library=expert_library,
            library_problems=expert_library_problems,
        )
    drawn = rng.uniform(horizon_range[0], horizon_range[1], num_samples) if horizon_range is not None else None
    if drawn is None:
        labels, lqr = solve_expert(
            system, x0, targets, expert, success_threshold=success_threshold, required_success=required_success
        )
    else:
        labels, lqr = _solve_by_horizon(system, x0, targets, drawn, expert, success_threshold, required_success)
    lqr_summary = lqr.summary(success_threshold)
    if expert == "auto" and labels.expert == "lqr":
        reason = "expert='auto': the box-constrained LQR optimum reaches the success bar"
    elif expert == "auto":
        reason = (
            f"expert='auto': the box-constrained LQR optimum of the stated cost reaches only "
            f"{100 * lqr_summary['success_rate']:.1f}% success (terminal error < {success_threshold}), below the "
            f"required {100 * required_success:.1f}%, so the terminal-constrained optimum labels the data"
        )
    elif expert == "optimal":
        reason = "expert='optimal': the minimiser of the stated cost J subject to x_N = r and the control box"
    else:
        reason = f"expert={expert!r} requested"
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "num_samples": int(num_samples),
        "seed": int(seed),
        "initial_range": np.asarray(initial_range).tolist(),
        "target_range": np.asarray(target_range).tolist(),
        "expert_requested": expert,
        "expert": labels.expert,
        "expert_reason": reason,
        "success_threshold": success_threshold,
        "required_success": required_success,
        "expert_summary": labels.summary(success_threshold),
        "lqr_summary": lqr_summary,
        "cost": "J = sum_{k<N} (x_k-r)'Q(x_k-r) + u_k'R u_k + (x_N-r)'Qf(x_N-r)",
        "generator": f"mlcore-trc-control {_plugin_version()}",
        "generated_seconds": round(time.perf_counter() - start, 3),
    }
    log.info(
        "generated %d %s problems in %.2fs: expert=%s (%s); LQR limit binds in %d",
        num_samples,
        system.name,
        meta["generated_seconds"],
        labels.expert,
        reason,
        lqr_summary["control_limit_binds"],
    )
    if drawn is not None:
        meta["horizon_span"] = [float(drawn.min()), float(drawn.max())]
    return LQRProblemSet(
        system=system,
        initial_states=x0,
        target_states=targets,
        control_sequences=labels.controls,
        state_trajectories=labels.states,
        optimal_costs=labels.costs,
        lqr_control_sequences=lqr.controls,
        lqr_costs=lqr.costs,
        lqr_terminal_errors=lqr.terminal_errors,
        metadata=meta,
        time_horizons=drawn,
    )


def _solve_by_horizon(
    system: LinearSystem,
    x0: np.ndarray,
    targets: np.ndarray,
    horizons: np.ndarray,
    expert: str,
    success_threshold: float,
    required_success: float,
) -> tuple[ExpertSolution, ExpertSolution]:
    """Label problems with per-problem horizons: each distinct horizon by the exact solver of its own ZOH
    discretisation; the batch results merged back in problem order (``auto`` decides on the whole set)."""
    parts = []
    for horizon, index in _by_horizon(horizons):
        sub = system.with_horizon(horizon)
        parts.append((index, *solve_expert(sub, x0[index], targets[index], "lqr" if expert == "auto" else expert)))
    lqr = _merge([(i, lq) for i, _, lq in parts], len(x0))
    if expert == "auto":
        if success_rate(lqr.terminal_errors, success_threshold) >= required_success:
            return lqr, lqr
        parts = [
            (i, solve_expert(system.with_horizon(float(horizons[i[0]])), x0[i], targets[i])[0], lq)
            for i, _, lq in parts
        ]
    return _merge([(i, lab) for i, lab, _ in parts], len(x0)), lqr


def _merge(parts: list[tuple[np.ndarray, ExpertSolution]], count: int) -> ExpertSolution:
    """One :class:`ExpertSolution` from solutions of index subsets."""
    first = parts[0][1]
    out = {}
    for key in ("controls", "states", "costs", "terminal_errors", "binds"):
        ref = getattr(first, key)
        arr = np.empty((count, *ref.shape[1:]), dtype=ref.dtype)
        for index, sol in parts:
            arr[index] = getattr(sol, key)
        out[key] = arr
    return ExpertSolution(
        first.expert, out["controls"], out["states"], out["costs"], out["terminal_errors"], out["binds"]
    )


def _nonlinear_problem_set(
    system: NonlinearSystem,
    x0: np.ndarray,
    targets: np.ndarray,
    horizons: np.ndarray,
    *,
    seed: int,
    initial_range: np.ndarray,
    target_range: np.ndarray,
    expert: str,
    success_threshold: float,
    start: float,
    neighbours: int = 5,
    library: int = 0,
    library_problems: int = 0,
) -> LQRProblemSet:
    """Label nonlinear problems: LQR on the linearisation always, multiple shooting for ``optimal``."""
    from mlcore_trc_control.nonlinear.expert import lqr_on_linearisation, multiple_shooting

    num = len(x0)
    if expert not in NONLINEAR_EXPERTS:
        raise ConfigError(
            f"data.expert={expert!r} is not available for the nonlinear system {system.name!r} "
            f"(allowed: {', '.join(NONLINEAR_EXPERTS)})"
        )
    lqr = lqr_on_linearisation(system, x0, targets, horizons)
    if expert == "optimal":
        labels = multiple_shooting(
            system,
            x0,
            targets,
            horizons,
            lqr=lqr,
            success_threshold=success_threshold,
            neighbours=neighbours,
            library=library,
            library_problems=library_problems,
        )
        reason = (
            "expert='optimal': direct multiple shooting (CasADi + IPOPT) of the stated cost J with RK4 dynamics, "
            "x_N = r and the control box, warm-started"
            + (f", then restarts from the {neighbours} nearest neighbours' solutions" if neighbours > 0 else "")
            + (
                f" and from {library} solutions drawn from the whole set"
                + (f" (on {library_problems} problems)" if 0 < library_problems < num else "")
                if library > 0
                else ""
            )
        )
    else:
        labels, reason = lqr, "expert='lqr': finite-horizon LQR on the linearisation at the target, closed loop"
    span = [float(horizons.min()), float(horizons.max())]
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "num_samples": int(num),
        "seed": int(seed),
        "initial_range": np.asarray(initial_range).tolist(),
        "target_range": np.asarray(target_range).tolist(),
        "horizon_span": span,
        "expert_requested": expert,
        "expert": "optimal" if expert == "optimal" else "lqr",
        "expert_reason": reason,
        "lqr_label": "LQR on the linearisation (closed loop, clipped to the box)",
        "success_threshold": success_threshold,
        "expert_summary": labels.summary(success_threshold),
        "lqr_summary": lqr.summary(success_threshold),
        "cost": "J = sum_{k<N} (x_k-r)'Q(x_k-r) + u_k'R u_k + (x_N-r)'Qf(x_N-r), RK4 dynamics",
        "generator": f"mlcore-trc-control {_plugin_version()}",
        "generated_seconds": round(time.perf_counter() - start, 3),
    }
    return LQRProblemSet(
        system=system,
        initial_states=x0,
        target_states=targets,
        control_sequences=labels.controls,
        state_trajectories=labels.states,
        optimal_costs=labels.costs,
        lqr_control_sequences=lqr.controls,
        lqr_costs=lqr.costs,
        lqr_terminal_errors=lqr.terminal_errors,
        metadata=meta,
        time_horizons=horizons if np.ptp(horizons) > 0 else None,
    )


def _plugin_version() -> str:
    from mlcore_trc_control import __version__

    return __version__


class LQRTensorDataset:
    """A torch-style dataset of ``(problem, controls)`` items; ``.problem_set`` keeps the full arrays."""

    def __init__(self, problem_set: LQRProblemSet) -> None:
        self.problem_set = problem_set
        self.problems, self.controls = problem_set.tensors()

    def __len__(self) -> int:
        return int(self.problems.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.problems[index], self.controls[index]


class LQRData(DataModule):
    """Finite-horizon LQR problems labelled with their optimal controls (see the module docstring)."""

    def __init__(self, config: LQRDataConfig | None = None) -> None:
        super().__init__(config or LQRDataConfig())
        self.config: LQRDataConfig
        self._system: LinearSystem | NonlinearSystem | None = None
        self._train_full: LQRProblemSet | None = None
        self._test: LQRProblemSet | None = None
        self._splits: dict[str, LQRTensorDataset] = {}

    # ------------------------------------------------------------------ problem
    @property
    def system(self) -> LinearSystem | NonlinearSystem:
        """The (linear or nonlinear) system and cost this data module's config defines."""
        if self._system is None:
            self._system = self.config.build_system()
        return self._system

    @property
    def input_dim(self) -> int:
        """Model input size ``2n + 1``."""
        return 2 * self.system.n + 1

    def setup(self) -> None:
        """Check the config (cheap); problem sets are generated or loaded on first use."""
        _ = self.system
        cfg = self.config
        cfg.ranges(self.system.n)
        if cfg.path is None and cfg.test_path is None and cfg.test_num_samples > 0 and cfg.seed == cfg.test_seed:
            log.warning(
                "dataset.seed == dataset.test_seed (%d): the test problems are the training problems; "
                "set a different dataset.test_seed",
                cfg.seed,
            )

    def _generate(self, num_samples: int, seed: int) -> LQRProblemSet:
        init, target = self.config.ranges(self.system.n)
        return generate_problem_set(
            self.system,
            num_samples,
            seed,
            init,
            target,
            expert=self.config.expert,
            success_threshold=self.config.success_threshold,
            required_success=self.config.required_success,
            horizon_range=self.config.horizons_bounds(),
            expert_neighbours=self.config.expert_neighbours,
            expert_library=self.config.expert_library,
            expert_library_problems=self.config.expert_library_problems,
        )

    def _load(self, path: str, field: str) -> LQRProblemSet:
        cfg = self.config
        seed = cfg.seed if field == "path" else cfg.test_seed
        num = cfg.num_samples if field == "path" else max(cfg.test_num_samples, 1)
        ps = LQRProblemSet.load(path, num_samples=num, seed=seed)
        if is_nonlinear(ps.system) != is_nonlinear(self.system) or not ps.system.same_problem(self.system):  # type: ignore[arg-type]
            raise DataError(
                f"{ps.metadata['file']} (data.{field}) was generated for another problem "
                f"(system {ps.system.name!r}, N={ps.system.num_steps}, dt={ps.system.dt:.4g}, "
                f"limit={ps.system.control_limit}) "
                f"than the config (system {self.system.name!r}, N={self.system.num_steps}, dt={self.system.dt:.4g}, "
                f"limit={self.system.control_limit}); regenerate it with `{_generate_command(Path(path), num, seed)}` "
                "and the same data settings"
            )
        return ps

    def train_problems(self) -> LQRProblemSet:
        """The full training problem set (loaded from ``path`` or generated), before the val split."""
        if self._train_full is None:
            cfg = self.config
            self._train_full = self._load(cfg.path, "path") if cfg.path else self._generate(cfg.num_samples, cfg.seed)
        return self._train_full

    def test_problems(self) -> LQRProblemSet | None:
        """The test problem set (``test_path`` or generated with ``test_seed``), or ``None``."""
        cfg = self.config
        if self._test is None and (cfg.test_path or cfg.test_num_samples > 0):
            self._test = (
                self._load(cfg.test_path, "test_path")
                if cfg.test_path
                else self._generate(cfg.test_num_samples, cfg.test_seed)
            )
            train = self._train_full
            if train is not None and train.expert != self._test.expert:
                raise DataError(
                    f"test set labelled by expert {self._test.expert!r} but the training set by {train.expert!r}; "
                    "set data.expert explicitly and regenerate"
                )
        return self._test

    def _split_indices(self) -> tuple[np.ndarray, np.ndarray]:
        total = len(self.train_problems())
        n_val = round(total * self.config.val_fraction)
        if self.config.val_fraction > 0 and total > 1:
            n_val = min(max(n_val, 1), total - 1)
        perm = np.random.default_rng(self.config.seed + 1).permutation(total)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def _split(self, name: str) -> LQRTensorDataset | None:
        if name not in self._splits:
            if name == "test":
                test = self.test_problems()
                if test is None:
                    return None
                self._splits[name] = LQRTensorDataset(test)
            else:
                train_idx, val_idx = self._split_indices()
                idx = train_idx if name == "train" else val_idx
                if name == "val" and len(idx) == 0:
                    return None
                self._splits[name] = LQRTensorDataset(self.train_problems().subset(idx))
        return self._splits[name]

    def train_set(self) -> LQRTensorDataset:  # type: ignore[override]
        """Training split: ``(problem, controls)`` items."""
        split = self._split("train")
        assert split is not None
        return split

    def val_set(self) -> LQRTensorDataset | None:  # type: ignore[override]
        """Validation split (``val_fraction`` of the training problems), or ``None``."""
        return self._split("val")

    def test_set(self) -> LQRTensorDataset | None:  # type: ignore[override]
        """Test split, or ``None`` when ``test_num_samples=0`` and no ``test_path``."""
        return self._split("test")

    # ------------------------------------------------------------------ files and state
    def generate(self, out_dir: Path) -> list[Path]:
        """Write ``num_samples`` problems generated with ``seed`` to ``out_dir/lqr_dataset.npz``."""
        ps = self._generate(self.config.num_samples, self.config.seed)
        path = ps.save(Path(out_dir) / DATA_FILE)
        log.info("wrote %s (%d problems, expert=%s)", path, len(ps), ps.expert)
        return [path]

    def state_dict(self) -> dict[str, Any]:
        """The problem definition and expert (plain data), so checkpoints say what they were trained for."""
        return {"problem": self.system.to_dict(), "input_dim": self.input_dim, "expert_requested": self.config.expert}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Check a checkpoint's problem definition against this config (DataError on mismatch)."""
        problem = state.get("problem") if isinstance(state, dict) else None
        if problem is None:
            return
        saved = system_from_dict(problem)
        if is_nonlinear(saved) != is_nonlinear(self.system) or not saved.same_problem(self.system):
            raise DataError(
                f"the checkpoint was trained on system {saved.name!r} (N={saved.num_steps}, dt={saved.dt:.4g}) "
                f"but the data config defines {self.system.name!r} (N={self.system.num_steps}, dt={self.system.dt:.4g})"
            )
