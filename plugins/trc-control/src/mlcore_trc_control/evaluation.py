"""The ``trc`` evaluator: roll predicted control sequences open-loop through the true dynamics.

Figures (all on the evaluation split; errors are ``||x_N - r||``, costs the stated ``J``):

=========================  ==================================================================
``mean_terminal_error``    mean terminal error of the model's controls
``success_rate``           fraction with terminal error < ``success_threshold`` (0.1)
``error_gap``              ``(err_model - err_LQR) / err_LQR`` on mean terminal errors, where
                           LQR is the exact box-constrained optimum of the stated cost without
                           ``x_N = r`` — the original work's definition
``lqr_cost``               mean ``J`` of the model's controls
``cost_gap``               ``cost_model / cost_oracle - 1``: against the expert that labelled
                           the data (by default ``optimal``: the minimiser of ``J`` with
                           ``x_N = r`` and the box)
``cost_gap_lqr``           ``cost_model / cost_LQR - 1`` against the LQR optimum of ``J``
                           (equals ``cost_gap`` when the expert is LQR)
``control_mse``            mean squared error to the expert's controls
``inference_ms_batch1``    median milliseconds per problem, one problem per call
``inference_ms_batched``   milliseconds per problem, ``timing_batch_size`` problems per call
``..._torchscript``        the same for the model traced + frozen by TorchScript (CPU only)
``num_parameters``         trainable parameters
=========================  ==================================================================

plus the same figures for the oracle (``oracle_*``), the LQR optimum (``lqr_optimal_*``) and
uniformly random controls within the limit (``random_*``). ``evaluation_results.json`` holds
everything with the data set's expert and the config.
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from mlcore.config import in_range, positive
from mlcore.errors import MlcoreError
from mlcore.evaluation import Evaluator
from mlcore.io import atomic_write_json

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mlcore.data import DataModule
    from mlcore_trc_control.data import LQRProblemSet
    from mlcore_trc_control.lqr.systems import LinearSystem
    from mlcore_trc_control.nonlinear.systems import NonlinearSystem

log = logging.getLogger(__name__)

__all__ = [
    "RESULTS_FILE",
    "TRCEvaluator",
    "TRCEvaluatorConfig",
    "predict_controls",
    "random_controls",
    "rollout_metrics",
]

RESULTS_FILE = "evaluation_results.json"


@attrs.define
class TRCEvaluatorConfig:
    """Config of the ``trc`` evaluator (section ``evaluation`` of the ``trc`` pipeline).

    Attributes:
        success_threshold: terminal error counted as success (0.1).
        batch_size: problems per forward pass for the metrics (1024).
        timing_problems: problems timed one at a time for ``inference_ms_batch1`` (200).
        timing_batch_size: batch size of ``inference_ms_batched`` (1000).
        random_seed: seed of the random-control baseline.
    """

    success_threshold: float = attrs.field(default=0.1, validator=in_range(0, low_open=True))
    batch_size: int = attrs.field(default=1024, validator=positive)
    timing_problems: int = attrs.field(default=200, validator=positive)
    timing_batch_size: int = attrs.field(default=1000, validator=positive)
    random_seed: int = 0


def rollout_metrics(
    system: LinearSystem | NonlinearSystem, problems: LQRProblemSet, controls: np.ndarray, threshold: float = 0.1
) -> dict[str, float]:
    """Terminal error, success rate, cost and control MSE of ``controls (M, N, m)`` on ``problems``
    (rolled out through the true dynamics: exact for linear systems, RK4 for nonlinear ones; a
    diverging rollout counts as a failure with infinite cost)."""
    controls = np.asarray(controls, dtype=np.float64)
    states = problems.rollout(controls)  # each problem's own horizon (RK4 / exact ZOH)
    errors = problems.terminal_errors(states)  # tracked states only (the rocket's mass has no target)
    errors = np.where(np.isfinite(errors), errors, np.inf)
    costs = system.cost(states, controls, problems.target_states)
    limit = system.control_limit
    return {
        "mean_terminal_error": float(errors.mean()),
        "median_terminal_error": float(np.median(errors)),
        "success_rate": float(np.mean(errors < threshold)),
        "lqr_cost": float(costs.mean()),
        "control_mse": float(np.mean((controls - problems.control_sequences) ** 2)),
        "limit_violation_rate": float(np.mean(np.abs(controls).max(axis=(1, 2)) > limit + 1e-9)) if limit > 0 else 0.0,
    }


def random_controls(system: LinearSystem | NonlinearSystem, problems: LQRProblemSet, seed: int = 0) -> np.ndarray:
    """Uniform random controls in ``[-limit, limit]`` (or with the expert's spread when unbounded)."""
    rng = np.random.default_rng(seed)
    limit = system.control_limit or float(np.abs(problems.control_sequences).max())
    return rng.uniform(-limit, limit, problems.control_sequences.shape)


def predict_controls(
    model: nn.Module,
    problems: np.ndarray,
    *,
    device: Any = "cpu",
    batch_size: int = 1024,
    num_outer_cycles: int | None = None,
) -> np.ndarray:
    """The model's controls ``(M, N, m)`` (float64) for problems ``(M, 2n+1)``, without gradients."""
    import torch

    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            x = torch.as_tensor(problems, dtype=torch.float32)
            for i in range(0, x.shape[0], batch_size):
                batch = x[i : i + batch_size].to(device)
                predict = getattr(model, "predict", None)
                if num_outer_cycles is not None and callable(predict):
                    y = predict(batch, num_outer_cycles=num_outer_cycles)
                else:
                    y = model(batch)
                out.append(y.float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out, axis=0).astype(np.float64)


def _time_calls(fn: Any, x: Any, *, single: int, batch: int, sync: Any) -> tuple[float, float, int]:
    """(median seconds per single-problem call, seconds per problem batched, batch size)."""
    for i in range(min(10, x.shape[0])):
        fn(x[i : i + 1])
    times = []
    for i in range(min(single, x.shape[0])):
        sync()
        start = time.perf_counter()
        fn(x[i : i + 1])
        sync()
        times.append(time.perf_counter() - start)
    chunk = x[: min(batch, x.shape[0])]
    fn(chunk)
    sync()
    batched = []
    for _ in range(3):
        start = time.perf_counter()
        fn(chunk)
        sync()
        batched.append((time.perf_counter() - start) / chunk.shape[0])
    return statistics.median(times), min(batched), int(chunk.shape[0])


def freeze_for_inference(model: nn.Module, example: Any) -> Any:
    """The model traced, frozen and optimised by TorchScript (PyTorch's CPU deployment path)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # torch 2.10+ marks TorchScript deprecated in favour of torch.compile/torch.export; it still is the
        # lightest way to drop Python dispatch at batch size 1 (torch.compile needs a C++ toolchain and
        # tens of seconds per model). The ONNX Runtime figure (export.json) is the non-deprecated twin.
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model.eval(), example)
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


def time_inference(
    model: nn.Module, problems: np.ndarray, *, device: Any = "cpu", single: int = 200, batch: int = 1000
) -> dict[str, float]:
    """Milliseconds per problem: median of single-problem calls, and per problem in one batched call.

    Timed for the eager model and, on CPU, for the same model traced, frozen and optimised by
    TorchScript (``inference_ms_batch1_torchscript``): at batch size 1 the eager time is mostly
    Python dispatch of ~150 small ops, which the frozen graph removes; outputs agree to ~1e-6.
    """
    import torch

    was_training = model.training
    model.eval()
    x = torch.as_tensor(problems, dtype=torch.float32).to(device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    out: dict[str, float] = {}
    try:
        with torch.inference_mode():
            one, many, size = _time_calls(model, x, single=single, batch=batch, sync=sync)
        out = {"inference_ms_batch1": 1000.0 * one, "inference_ms_batched": 1000.0 * many, "timing_batch_size": size}
        if torch.device(device).type == "cpu":
            with torch.no_grad():
                frozen = freeze_for_inference(model, x[:1])
                diff = float((frozen(x[:64]) - model(x[:64])).abs().max())
                one, many, _ = _time_calls(frozen, x, single=single, batch=batch, sync=sync)
            out.update(
                {
                    "inference_ms_batch1_torchscript": 1000.0 * one,
                    "inference_ms_batched_torchscript": 1000.0 * many,
                    "torchscript_max_abs_diff": diff,
                }
            )
    finally:
        model.train(was_training)
    return out


def _eval_problems(data: DataModule) -> LQRProblemSet:
    data.prepare()
    split = data.eval_set()
    problem_set = getattr(split, "problem_set", None)
    if problem_set is None:
        raise MlcoreError(
            f"the trc evaluator needs the 'lqr' dataset (got {type(data).__name__}, whose splits carry no LQR problems)"
        )
    return problem_set


class TRCEvaluator(Evaluator):
    """Open-loop rollout evaluation of a control-sequence model against the oracle, LQR and random controls."""

    metrics = (
        "mean_terminal_error",
        "success_rate",
        "error_gap",
        "lqr_cost",
        "cost_gap",
        "cost_gap_lqr",
        "control_mse",
        "inference_ms_batch1",
        "inference_ms_batched",
        "num_parameters",
    )

    def __init__(self, config: TRCEvaluatorConfig | None = None) -> None:
        super().__init__(config or TRCEvaluatorConfig())
        self.config: TRCEvaluatorConfig

    def baselines(self, problems: LQRProblemSet) -> dict[str, dict[str, float]]:
        """Figures of the oracle (expert labels), the LQR optimum and random controls."""
        cfg, system = self.config, problems.system
        return {
            "oracle": rollout_metrics(system, problems, problems.control_sequences, cfg.success_threshold),
            "lqr_optimal": rollout_metrics(system, problems, problems.lqr_control_sequences, cfg.success_threshold),
            "random": rollout_metrics(
                system, problems, random_controls(system, problems, cfg.random_seed), cfg.success_threshold
            ),
        }

    def evaluate(
        self,
        model: nn.Module,
        data: DataModule,
        *,
        device: torch.device | str = "cpu",
        out_dir: str | Path | None = None,
    ) -> dict[str, float]:
        """Evaluate ``model`` on ``data.eval_set()``; writes ``metrics.json`` and ``evaluation_results.json``."""
        cfg = self.config
        problems = _eval_problems(data)
        system = problems.system
        inputs = problems.problems()
        controls = predict_controls(model, inputs, device=device, batch_size=cfg.batch_size)
        expected = problems.control_sequences.shape
        if controls.shape != expected:
            raise MlcoreError(
                f"the model outputs controls of shape {controls.shape[1:]} but the data needs {expected[1:]} "
                f"(set model.num_steps={expected[1]}, model.control_dim={expected[2]})"
            )
        model_m = rollout_metrics(system, problems, controls, cfg.success_threshold)
        base = self.baselines(problems)
        timing = time_inference(model, inputs, device=device, single=cfg.timing_problems, batch=cfg.timing_batch_size)
        lqr_err = base["lqr_optimal"]["mean_terminal_error"]
        metrics: dict[str, float] = {
            **{
                k: model_m[k]
                for k in ("mean_terminal_error", "median_terminal_error", "success_rate", "lqr_cost", "control_mse")
            },
            "error_gap": (model_m["mean_terminal_error"] - lqr_err) / lqr_err if lqr_err > 0 else float("nan"),
            "cost_gap": model_m["lqr_cost"] / base["oracle"]["lqr_cost"] - 1.0,
            "cost_gap_lqr": model_m["lqr_cost"] / base["lqr_optimal"]["lqr_cost"] - 1.0,
            "limit_violation_rate": model_m["limit_violation_rate"],
            "inference_ms_batch1": timing["inference_ms_batch1"],
            "inference_ms_batched": timing["inference_ms_batched"],
            **{k: v for k, v in timing.items() if k.endswith("_torchscript")},
            "num_parameters": float(sum(p.numel() for p in model.parameters() if p.requires_grad)),
            "num_problems": float(len(problems)),
        }
        for name, figures in base.items():
            for key in ("mean_terminal_error", "success_rate", "lqr_cost"):
                metrics[f"{name}_{key}"] = figures[key]
        if out_dir is not None:
            atomic_write_json(
                Path(out_dir) / RESULTS_FILE,
                {
                    "metrics": metrics,
                    "model": model_m,
                    "baselines": base,
                    "timing": timing,
                    "expert": problems.expert,
                    "expert_reason": problems.metadata.get("expert_reason", ""),
                    "system": system.name,
                    "num_problems": len(problems),
                    "success_threshold": cfg.success_threshold,
                    "config": attrs.asdict(cfg),
                    "definitions": {
                        "error_gap": "(mean_err_model - mean_err_LQR) / mean_err_LQR, "
                        "LQR = exact optimum of the stated cost",
                        "cost_gap": "mean_cost_model / mean_cost_oracle - 1, "
                        "oracle = the expert that labelled the data",
                        "cost_gap_lqr": "mean_cost_model / mean_cost_LQR - 1",
                    },
                },
            )
        log.info(
            "trc evaluation on %d problems: success %.2f%%, terminal error %.4f, cost gap %+.2f%%, "
            "%.3f ms/problem at batch 1 (eager)",
            len(problems),
            100 * metrics["success_rate"],
            metrics["mean_terminal_error"],
            100 * metrics["cost_gap"],
            metrics["inference_ms_batch1"],
        )
        return self.finish(metrics, out_dir)
