"""Benchmark: plan selection by simulated outcome on finished trc-control closed-loop runs.

Re-loads the networks of runs made by ``trc_control.py --closed-loop`` (TRC from
``checkpoints/best.pt``, the DAgger-tuned TRC and MLP from ``closed_loop/{trc,mlp}_dagger.pt``) and
runs them in closed loop on the run's first ``closed_loop.problems`` test problems, with and
without :class:`mlcore_trc_control.selection.SelectingPlanner`: TRC proposing its answers after
outer cycles ``1..C`` for every ``C`` of ``--cycles``, the MLP its one plan, each beside its kept
previous tail. No network is retrained, so the rows compare deployments of the same weights on
identical problems; cost gaps are against the expert's open-loop optimum of those problems. Then
with the re-planned LQR of the linearisation as one more candidate beside the tuned TRC's (and the
MLP's), ``--jitter`` adding the networks' plans from perturbed states, and, with ``--polish``,
iLQR iterations at every re-plan from the selected plan, and from the re-planned LQR alone (the
classical warm start) for comparison; with ``--catch``, the same schemes with every candidate
handed to the LQR of the linearisation near the target. Each row also gives, per problem, the share of problems
whose executed cost is within 5 % of their own expert optimum and above +20 %. Writes
``closed_loop_selection.<run name>`` of ``tools/bench/results/trc_control.json`` (with ``--problems N``
and ``--only TEXT``, ``<run name>_<N>problems[_only]`` beside it).

    python tools/bench/trc_selection.py runs/bench-trc-control-closed-loop/pendulum_dagger_big \\
        --cycles 1,2,3,4,6 --replan 1,2 --polish 0,1,5 --jitter 0.15,0.3 --catch 0.5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import tomllib
from _common import machine_info
from trc_control import RESULTS, _load, _merge


def _networks(run: Path) -> dict[str, object]:
    """``TRC`` (imitation), ``TRC + DAgger``, ``MLP + DAgger`` of a finished run (the ones it saved)."""
    import torch

    from mlcore.api import build, load_checkpoint
    from mlcore_trc_control.models.mlp import MLPPolicy

    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    model_config = ckpt["meta"]["components"]["model"]["config"]
    nets: dict[str, object] = {}
    trc = build("model", "trc", model_config)
    trc.load_state_dict(ckpt["model"])
    nets["TRC"] = trc.eval()
    dagger = run / "closed_loop" / "trc_dagger.pt"
    if dagger.exists():
        tuned = build("model", "trc", model_config)
        tuned.load_state_dict(torch.load(dagger, weights_only=True))
        nets["TRC + DAgger"] = tuned.eval()
    mlp_path = run / "closed_loop" / "mlp_dagger.pt"
    if mlp_path.exists():
        state = torch.load(mlp_path, weights_only=True)
        width, inputs = state["net.0.weight"].shape
        steps, m = int(model_config["num_steps"]), int(model_config["control_dim"])
        mlp = MLPPolicy(inputs, steps, m, width)
        mlp.load_state_dict(state)
        nets["MLP + DAgger"] = mlp.eval()
    return nets


def planners(
    system: Any,
    nets: dict[str, object],
    cycles: list[int],
    polish: list[int],
    jitter: list[float] | None,
    *,
    margin: float,
    catch: list[float] | None = None,
) -> list[tuple[str, object, dict[str, object]]]:
    """``(method, planner, extra JSON fields)`` of every row of one re-plan setting, in table order:
    each network alone and with plan selection (TRC: each of ``cycles``, and the most without the
    kept tail; the MLP: its one plan), then per ``polish`` budget the LQR variants (the tuned TRC's
    and the MLP's candidates beside the re-planned LQR's, optionally jittered, the LQR alone), then
    per ``catch`` radius the same networks' schemes with every candidate handed to the LQR within that
    distance of the target (:func:`mlcore_trc_control.selection.lqr_catch`).
    Every selecting planner is built by :func:`mlcore_trc_control.selection.selecting_planner`."""
    from functools import partial

    from mlcore_trc_control.closed_loop import policy_planner
    from mlcore_trc_control.selection import selecting_planner

    if (polish or catch) and getattr(system, "kind", "linear") != "nonlinear":
        raise ValueError(
            f"--polish/--catch: the LQR variants need a nonlinear system, not {getattr(system, 'name', system)!r}"
        )
    limit = float(system.control_limit)
    select = partial(selecting_planner, system, margin=margin, clip_to=limit)
    out: list[tuple[str, object, dict[str, object]]] = []
    for name, net in nets.items():
        out.append((name, policy_planner(net, clip_to=limit), {}))
        if hasattr(net, "forward_cycles"):
            for count in cycles:
                out.append((f"{name} + plan selection ({count} cycles)", select(net, cycles=count), {"cycles": count}))
            out.append(
                (
                    f"{name} + plan selection ({max(cycles)} cycles), no kept tail",
                    select(net, cycles=max(cycles), keep_previous=False),
                    {"cycles": max(cycles)},
                )
            )
        else:
            out.append((f"{name} + plan selection (its one plan)", select(net, cycles=0), {}))
    # the LQR's plan as one more candidate (it takes the near-target starts), and a local
    # solver in the loop: iLQR from the selected plan; the re-planned LQR alone for comparison
    tuned = "TRC + DAgger" if "TRC + DAgger" in nets else "TRC"
    mlp = "MLP + DAgger" if "MLP + DAgger" in nets else None
    top = max(cycles)
    for iterations in polish:
        suffix = f" + {iterations} iLQR iterations" if iterations else ""
        named = _schemes(nets, tuned, mlp, top, jitter, suffix)
        order = ["cycles"] if iterations else []  # the cycles alone only beside a polish
        for key in [*order, "cycles + LQR", "MLP + LQR", "jittered", "MLP jittered"]:
            if key not in named:
                continue
            method, net, count, with_lqr, offsets = named[key]
            planner = select(net, cycles=count, jitter=offsets, with_lqr=with_lqr, polish_iterations=iterations)
            extra: dict[str, object] = {
                "cycles": count,
                "with_lqr": with_lqr,
                "jitter": offsets,
                "polish_iterations": iterations,
            }
            out.append((method, planner, extra))
        out.append(
            (
                f"LQR on the linearisation + plan selection{suffix}",
                select(None, cycles=0, with_lqr=True, polish_iterations=iterations),
                {"polish_iterations": iterations},
            )
        )
    for radius in catch or []:
        suffix = f", LQR catch within {radius:g}"
        named = _schemes(nets, tuned, mlp, top, jitter, suffix)
        for key in ["cycles", "cycles + LQR", "jittered", "MLP + LQR", "MLP jittered"]:
            if key not in named:
                continue
            method, net, count, with_lqr, offsets = named[key]
            planner = select(net, cycles=count, jitter=offsets, with_lqr=with_lqr, catch=radius)
            out.append((method, planner, {"cycles": count, "with_lqr": with_lqr, "jitter": offsets, "catch": radius}))
        lqr_alone = select(None, cycles=0, with_lqr=True, catch=radius)
        out.append((f"LQR on the linearisation + plan selection{suffix}", lqr_alone, {"catch": radius}))
    return out


def _schemes(
    nets: dict[str, object], tuned: str, mlp: str | None, top: int, jitter: list[float] | None, suffix: str
) -> dict[str, tuple[str, object, int, bool, list[float] | None]]:
    """The tuned networks' selection schemes beside the LQR, ``key -> (method, network, cycles, with
    the LQR's plan, jitter)``: TRC's first ``top`` cycles alone and with the LQR's plan, from jittered
    states too, and the MLP's plan with the LQR's (jittered too); ``suffix`` ends every method name."""
    named = {
        "cycles": (f"{tuned} + plan selection ({top} cycles){suffix}", nets[tuned], top, False, None),
        "cycles + LQR": (f"{tuned} + plan selection ({top} cycles + LQR){suffix}", nets[tuned], top, True, None),
    }
    if jitter:
        method = f"{tuned} + plan selection ({top} cycles, jittered states + LQR){suffix}"
        named["jittered"] = (method, nets[tuned], top, True, jitter)
    if mlp is not None:
        named["MLP + LQR"] = (f"{mlp} + plan selection (its one plan + LQR){suffix}", nets[mlp], 0, True, None)
        if jitter:
            method = f"{mlp} + plan selection (its one plan, jittered states + LQR){suffix}"
            named["MLP jittered"] = (method, nets[mlp], 0, True, jitter)
    return named


def evaluate(
    run: Path,
    cycles: list[int],
    replans: list[int],
    polish: list[int],
    jitter: list[float] | None,
    catch: list[float] | None = None,
    *,
    problems_count: int = 0,
    only: str = "",
) -> dict:
    """The selection table of one run (see the module docstring)."""
    import numpy as np

    from mlcore_trc_control.closed_loop import closed_loop_rollout
    from mlcore_trc_control.data import LQRProblemSet

    config = tomllib.loads((run / "config.toml").read_text())
    cl = config["closed_loop"]
    threshold = float(config.get("evaluator", {}).get("success_threshold", 0.1))
    test = LQRProblemSet.load(config["dataset"]["test_path"])
    problems = test.subset(np.arange(min(problems_count or int(cl["problems"]), len(test))))
    system = problems.system
    x0, targets, horizons = problems.initial_states, problems.target_states, problems.horizons()
    reference = float(problems.optimal_costs.mean())
    nets = _networks(run)
    rows = []

    def record(method: str, planner: object, replan: int, **extra: object) -> None:
        result = closed_loop_rollout(system, x0, targets, horizons, planner, replan_every=replan)
        summary = result.summary(threshold, reference)
        counts = getattr(planner, "counts", None)
        ratio = result.costs / problems.optimal_costs  # per problem, executed J / the expert's
        rows.append(
            {
                "method": method,
                "replan_every": replan,
                "success_rate": summary["success_rate"],
                "cost_gap": float(summary["cost_gap"]),
                "median_terminal_error": summary["median_terminal_error"],
                "share_within_5pct": float(np.mean(ratio <= 1.05)),
                "share_above_20pct": float(np.mean(ratio > 1.2)),
                "seconds": result.seconds,
                **({"selection": dict(counts)} if counts else {}),
                **extra,
            }
        )
        print(
            f"{method:<58} re-plan {replan}: success {100 * summary['success_rate']:5.1f} %  "
            f"cost gap {100 * summary['cost_gap']:+7.1f} %  median error {summary['median_terminal_error']:.3f}  "
            f"within 5 %: {int(np.sum(ratio <= 1.05))}/{len(ratio)}  "
            f"{result.seconds:.1f} s",
            flush=True,
        )

    for replan in replans:  # fresh planners per re-plan setting (they keep the committed plans)
        for method, planner, extra in planners(
            system, nets, cycles, polish, jitter, margin=0.5 * threshold, catch=catch
        ):
            if only in method:
                record(method, planner, replan, **extra)
    return {
        "run": str(run),
        "system": system.name,
        "num_problems": len(problems),
        "reference": "mean J of the expert's open-loop optimum on the same problems",
        "success_threshold": threshold,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories of trc_control.py --closed-loop")
    parser.add_argument("--cycles", default="1,2,3,4,6,8", help="TRC outer cycles proposed (comma-separated)")
    parser.add_argument("--replan", default="1", help="plant steps between re-plans (comma-separated)")
    parser.add_argument(
        "--polish",
        default="0,1,5",
        help="iLQR iterations per re-plan from the selected TRC plan and from the re-planned LQR (comma-separated; "
        "0 = the LQR candidate without iLQR; empty = none)",
    )
    parser.add_argument(
        "--jitter",
        default="",
        help="one offset per state (comma-separated): the tuned networks also asked from x ± d_i e_i",
    )
    parser.add_argument(
        "--catch",
        default="",
        help="radii (comma-separated): the tuned networks' schemes again, every candidate handed to the LQR "
        "of the linearisation within that distance of the target",
    )
    parser.add_argument(
        "--problems", type=int, default=0, help="test problems run (default: the run's closed_loop.problems)"
    )
    parser.add_argument("--only", default="", help="run only the rows whose method contains this text")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    cycles = [int(v) for v in args.cycles.split(",")]
    replans = [int(v) for v in args.replan.split(",")]
    polish = [int(v) for v in args.polish.split(",")] if args.polish else []
    jitter = [float(v) for v in args.jitter.split(",")] if args.jitter else None
    catch = [float(v) for v in args.catch.split(",")] if args.catch else None
    for run in map(Path, args.runs):
        if not (run / "config.toml").exists():
            print(f"error: {run}: not a run directory (no config.toml)", file=sys.stderr)
            return 2
        load_before = _load()
        start = time.perf_counter()
        found = evaluate(run, cycles, replans, polish, jitter, catch, problems_count=args.problems, only=args.only)
        found.update(
            machine=machine_info(),
            time=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            load_average_1min={"before": load_before, "after": _load()},
            wall_seconds=time.perf_counter() - start,
        )
        # a record of other problems or of some rows only sits beside the run's full one
        key = run.name + (f"_{found['num_problems']}problems" if args.problems else "") + ("_only" if args.only else "")
        found["only"] = args.only
        _merge(Path(args.results), "closed_loop_selection", found, subkey=key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
