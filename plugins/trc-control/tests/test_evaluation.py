"""Tests of the trc evaluator: metrics equal hand computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mlcore.errors import MlcoreError
from mlcore_trc_control.data import LQRData, LQRDataConfig
from mlcore_trc_control.evaluation import TRCEvaluator, TRCEvaluatorConfig, rollout_metrics


class _Lookup(nn.Module):
    """Returns fixed controls for each known problem (by row order of the eval set)."""

    def __init__(self, problems: torch.Tensor, controls: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("problems", problems)
        self.register_buffer("controls", controls)
        self.w = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = torch.cdist(x, self.problems).argmin(dim=1)
        return self.controls[idx]


@pytest.fixture(scope="module")
def data() -> LQRData:
    return LQRData(LQRDataConfig(num_samples=16, test_num_samples=40, test_seed=9)).prepare()


def _evaluate(data: LQRData, controls: np.ndarray, out: Path | None = None, **config: float) -> dict[str, float]:
    test = data.test_set()
    model = _Lookup(test.problems, torch.as_tensor(controls, dtype=torch.float32))
    ev = TRCEvaluator(TRCEvaluatorConfig(timing_problems=5, timing_batch_size=10, **config))
    return ev.evaluate(model, data, out_dir=out)


def _with_terminal_error(data: LQRData, error: np.ndarray, rows: slice) -> np.ndarray:
    """Expert controls whose last two steps are shifted so that ``x_N - r`` moves by ``error`` on ``rows``."""
    ps = data.test_problems()
    a, b = ps.system.A, ps.system.B
    # x_N changes by A B da + B db for shifts da, db of the last two controls
    shifts = np.linalg.solve(np.hstack([a @ b, b]), error)
    controls = ps.control_sequences.copy()
    controls[rows, -2, 0] += shifts[0]
    controls[rows, -1, 0] += shifts[1]
    return controls


def test_success_uses_the_euclidean_norm_of_an_anisotropic_terminal_error(data: LQRData) -> None:
    """(0.08, 0.08): max-abs 0.08 would pass a 0.1 threshold, the norm 0.113 does not."""
    controls = _with_terminal_error(data, np.array([0.08, 0.08]), slice(0, 20))
    metrics = _evaluate(data, controls)
    assert metrics["success_rate"] == pytest.approx(0.5)
    assert metrics["mean_terminal_error"] == pytest.approx(0.5 * np.hypot(0.08, 0.08), rel=1e-3)


def test_evaluator_honours_the_configured_success_threshold(data: LQRData) -> None:
    controls = _with_terminal_error(data, np.array([0.0, 0.15]), slice(0, 20))
    assert _evaluate(data, controls)["success_rate"] == pytest.approx(0.5)  # default 0.1
    assert _evaluate(data, controls, success_threshold=0.2)["success_rate"] == 1.0
    strict = _evaluate(data, data.test_problems().control_sequences, success_threshold=1e-9)
    assert strict["success_rate"] < 1.0  # float32 round trip of the expert's controls: ~1e-6 > 1e-9
    assert strict["oracle_success_rate"] == 1.0  # float64 expert rollout is exact to ~1e-12


def test_zero_controls_match_hand_computation(data: LQRData, tmp_path: Path) -> None:
    ps = data.test_problems()
    sys = ps.system
    zeros = np.zeros_like(ps.control_sequences)
    metrics = _evaluate(data, zeros, tmp_path)
    # with u = 0: x_N = A^N x_0, so the terminal error is ||A^N x_0 - r||
    a_n = np.linalg.matrix_power(sys.A, sys.num_steps)
    err = np.linalg.norm(ps.initial_states @ a_n.T - ps.target_states, axis=1)
    assert metrics["mean_terminal_error"] == pytest.approx(err.mean(), rel=1e-5)
    assert metrics["success_rate"] == pytest.approx(np.mean(err < 0.1))
    lqr_err = ps.lqr_terminal_errors.mean()
    assert metrics["error_gap"] == pytest.approx((err.mean() - lqr_err) / lqr_err, rel=1e-5)
    # cost of u = 0 by hand: sum over k of (A^k x0 - r)'Q(A^k x0 - r) + terminal
    cost = np.zeros(len(ps))
    for k in range(sys.num_steps + 1):
        e = ps.initial_states @ np.linalg.matrix_power(sys.A, k).T - ps.target_states
        w = sys.Qf if k == sys.num_steps else sys.Q
        cost += np.einsum("mi,ij,mj->m", e, w, e)
    assert metrics["lqr_cost"] == pytest.approx(cost.mean(), rel=1e-5)
    assert metrics["cost_gap"] == pytest.approx(cost.mean() / ps.optimal_costs.mean() - 1, rel=1e-5)
    assert metrics["cost_gap_lqr"] == pytest.approx(cost.mean() / ps.lqr_costs.mean() - 1, rel=1e-5)
    assert metrics["control_mse"] == pytest.approx(np.mean(ps.control_sequences**2), rel=1e-5)
    assert metrics["num_parameters"] == 3
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "evaluation_results.json").exists()


def test_expert_controls_are_perfect(data: LQRData) -> None:
    ps = data.test_problems()
    metrics = _evaluate(data, ps.control_sequences)
    assert metrics["success_rate"] == 1.0
    assert metrics["mean_terminal_error"] < 1e-5  # float32 round trip of the controls
    assert abs(metrics["cost_gap"]) < 1e-5
    assert metrics["oracle_success_rate"] == 1.0
    assert metrics["random_success_rate"] < 0.2
    for name in TRCEvaluator.metrics:
        assert name in metrics


def test_rollout_metrics_success_threshold(data: LQRData) -> None:
    ps = data.test_problems()
    shifted = ps.control_sequences.copy()
    shifted[:20, -1, 0] += 1.0  # last control +1: terminal velocity error = dt = 1/3
    m = rollout_metrics(ps.system, ps, shifted, threshold=0.1)
    assert m["success_rate"] == pytest.approx(0.5)
    expected = np.sqrt((ps.system.B[0, 0]) ** 2 + ps.system.B[1, 0] ** 2)
    assert m["mean_terminal_error"] == pytest.approx(0.5 * expected, rel=1e-6)


def test_wrong_dataset_is_a_clear_error() -> None:
    from mlcore.data import DataModule

    class Other(DataModule):
        def train_set(self):  # type: ignore[override]
            return torch.utils.data.TensorDataset(torch.zeros(2, 5), torch.zeros(2, 15, 1))

    with pytest.raises(MlcoreError, match="needs the 'lqr' dataset"):
        TRCEvaluator().evaluate(nn.Linear(5, 15), Other())


def test_inference_times_are_milliseconds_per_problem(data: LQRData, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a clock that advances 2 ms per reading, every timed call lasts exactly 2 ms."""
    import itertools

    from mlcore_trc_control import evaluation

    ticks = itertools.count()
    monkeypatch.setattr(evaluation.time, "perf_counter", lambda: 0.002 * next(ticks))
    ps = data.test_problems()
    metrics = _evaluate(data, ps.control_sequences)  # timing_problems=5, timing_batch_size=10
    assert metrics["inference_ms_batch1"] == pytest.approx(2.0)
    assert metrics["inference_ms_batched"] == pytest.approx(2.0 / 10)  # one 2 ms call for 10 problems
    assert metrics["inference_ms_batch1_torchscript"] == pytest.approx(2.0)


def test_time_inference_reports_eager_and_frozen_torchscript() -> None:
    from mlcore_trc_control.evaluation import time_inference
    from mlcore_trc_control.models.trc import TinyRecursiveControl

    model = TinyRecursiveControl.create_small()
    problems = model.example_input(40).numpy()
    timing = time_inference(model, problems, single=20, batch=40)
    for key in ("inference_ms_batch1", "inference_ms_batched", "inference_ms_batch1_torchscript"):
        assert 0.0 < timing[key] < 1000.0, key
    assert timing["torchscript_max_abs_diff"] < 1e-4  # the frozen graph computes the same controls
    assert model.training  # the mode is restored


def test_limit_violations_count_problems_past_the_limit_beyond_float_noise() -> None:
    import attrs

    from mlcore_trc_control.data import LQRProblemSet
    from mlcore_trc_control.lqr.systems import build_system

    limit = 0.5
    bounded = build_system(control_limit=limit)
    steps = bounded.num_steps
    peaks = [0.0, limit, limit + 5e-10, limit + 1e-9, limit + 1.5e-9, -2 * limit]  # the last two violate
    controls = np.zeros((len(peaks), steps, 1))
    controls[:, 3, 0] = peaks
    zeros = np.zeros((len(peaks), bounded.n))
    flat = np.zeros(len(peaks))
    problems = LQRProblemSet(
        bounded, zeros, zeros, controls, bounded.rollout(zeros, controls), flat, controls, flat, flat
    )
    assert rollout_metrics(bounded, problems, controls)["limit_violation_rate"] == pytest.approx(2 / 6)
    unbounded = build_system(control_limit=0.0)
    problems = attrs.evolve(problems, system=unbounded)
    assert rollout_metrics(unbounded, problems, controls * 100)["limit_violation_rate"] == 0.0


class _TwoPaths(nn.Module):
    """``forward`` sums the problem's entries; ``predict`` returns the number of outer cycles."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=1).reshape(-1, 1, 1)

    def predict(self, x: torch.Tensor, num_outer_cycles: int) -> torch.Tensor:
        return torch.full((x.shape[0], 1, 1), float(num_outer_cycles))


def test_predict_controls_batches_all_problems_and_uses_predict_only_for_a_cycle_count() -> None:
    from mlcore_trc_control.evaluation import predict_controls

    problems = np.arange(40 * 5, dtype=np.float64).reshape(40, 5)
    model = _TwoPaths().train()
    out = predict_controls(model, problems, batch_size=7)  # 6 batches, the last one partial
    assert out.shape == (40, 1, 1) and out.dtype == np.float64
    assert np.allclose(out.ravel(), problems.sum(axis=1))  # forward, though the model has predict()
    assert np.all(predict_controls(model, problems, batch_size=7, num_outer_cycles=3) == 3.0)
    assert model.training  # the mode is restored


def test_time_calls_warms_up_then_times_single_and_batched_calls_between_syncs() -> None:
    """The timing protocol: 10 untimed single calls, synced timed single calls, one untimed batched
    call, then 3 timed batched calls (each synced before the clock stops)."""
    from mlcore_trc_control.evaluation import _time_calls

    events: list[object] = []
    _, _, size = _time_calls(
        lambda chunk: events.append(chunk.shape[0]),
        np.zeros((30, 5)),
        single=8,
        batch=12,
        sync=lambda: events.append("s"),
    )
    assert size == 12
    assert events == [1] * 10 + ["s", 1, "s"] * 8 + [12, "s"] + [12, "s"] * 3


def test_error_gap_is_nan_when_the_lqr_optimum_reaches_the_targets_exactly(
    data: LQRData, monkeypatch: pytest.MonkeyPatch
) -> None:
    baselines = TRCEvaluator.baselines

    def exact_lqr(self: TRCEvaluator, problems: object) -> dict[str, dict[str, float]]:
        base = baselines(self, problems)  # type: ignore[arg-type]
        base["lqr_optimal"]["mean_terminal_error"] = 0.0
        return base

    monkeypatch.setattr(TRCEvaluator, "baselines", exact_lqr)
    assert np.isnan(_evaluate(data, data.test_problems().control_sequences)["error_gap"])
