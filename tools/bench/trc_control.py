"""Benchmark: the trc-control ``full`` profile on CPU against the issue's targets.

Runs ``mlcore run --plugin trc-control --profile full`` (10K samples, medium model, 100 epochs,
batch 64, lr 1e-3) through the Python API, then prints a table of the headline figures against
the targets and writes ``tools/bench/results/trc_control.json`` with the machine it ran on and
the scale it ran at (``scale``: profile, epochs, samples, model size — a reduced run says so).
The data are labelled by the cost-optimal expert (``optimal``: min J with x_N = r and the box);
``cost_gap`` is against it.

    python tools/bench/trc_control.py                    # the full profile
    python tools/bench/trc_control.py --epochs 30        # a reduced scale (recorded in the JSON)
    python tools/bench/trc_control.py --other-systems planar_double_integrator,cartpole --profile quick
        # adds each system's baseline table (TRC vs linear vs MLP vs LQR vs oracle) to the JSON's
        # ``other_systems`` without re-running the main benchmark
    python tools/bench/trc_control.py --set model.size=small --out runs/bench-small
    python tools/bench/trc_control.py --nonlinear pendulum,vanderpol --epochs 30
        # the nonlinear section (JSON key ``nonlinear``): per system, TRC vs linear vs MLP vs LQR on
        # the linearisation vs the multiple-shooting expert, trained through the RK4 simulator;
        # ``--horizon-range 4,6`` adds a run trained over a range of horizons (generalisation table);
        # rocket landing too: --nonlinear rocket --num-samples 400 --test-samples 100 --epochs 30
        # learned plans as iLQR warm starts (key ``refinement`` of each record):
        # --set "comparison.refine_iterations=[0,1,2,5,10,20,50]"; --nonlinear-suffix _medium keeps
        # the record beside the earlier one (nonlinear.pendulum_medium)
    python tools/bench/trc_control.py --expert-check pendulum,vanderpol,rocket --test-samples 100
        # JSON key ``nonlinear_expert_check``: on the same test problems, the multiple-shooting expert
        # (with x_N = r, and soft) vs iLQR vs LQR on the linearisation: success, cost, time
    python tools/bench/trc_control.py --linear-horizons 3,6 --profile quick
        # JSON key ``linear_horizons``: the double integrator trained on one horizon vs on a range,
        # both generalisation tables on the same test problems

    python tools/bench/trc_control.py --closed-loop pendulum,vanderpol --profile quick --epochs 40
        # the closed-loop section (JSON key ``closed_loop``): TRC, linear, MLP, the expert and the
        # DAgger-tuned TRC/MLP, open- and closed-loop (shrinking-horizon re-planning) on the same
        # test problems, with and without actuation noise, plus the adaptive-halting table
        # closed-loop fine-tuning through the simulator, kept beside the DAgger record:
        # --closed-loop-set closed_loop.finetune_steps=600 --closed-loop-suffix _finetune
        # data labelled by a library-restarted expert, in their own folders (pendulum_lib_{train,test}):
        # --data-suffix _lib --data-set expert_library=64 --data-set expert_library_problems=150
    python tools/bench/trc_control.py --quick-check
        # JSON key ``quick_profile``: the double integrator's quick profile, wall time and success
    python tools/bench/trc_control.py --projection-latency
        # JSON key ``projection_latency``: batch-1 ONNX latency of the small and medium models with no
        # projection, the fixed-horizon one and the horizon-aware one (7 interleaved rounds)
    python tools/bench/trc_control.py --latency
        # JSON key ``latency``: batch-1 latency of the medium model (eager, TorchScript, ONNX Runtime)

Every section is merged into the JSON by its key (the file is re-read just before writing) and
records the 1-minute load average beside its timings.

Nonlinear data sets are cached in ``data/trc_nonlinear/<system>[_range]_{train,test}`` (made
with ``mlcore data generate lqr --system <system> ...`` on first use; delete them to regenerate).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import machine_info

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tools" / "bench" / "results" / "trc_control.json"

#: the nonlinear section's targets: success rate, cost gap vs the multiple-shooting expert
NONLINEAR_TARGETS = [("success_rate", 0.95, "min"), ("cost_gap", 0.05, "max")]
DATA = ROOT / "data" / "trc_nonlinear"

#: (metric, target, "max" = must be <= target, "min" = must be >= target)
TARGETS = [
    ("success_rate", 0.995, "min"),
    ("mean_terminal_error", 0.015, "max"),
    ("cost_gap", 0.02, "max"),
    ("inference_ms_batch1", 1.0, "max"),
    ("inference_ms_batch1_torchscript", 1.0, "max"),
    ("onnx_ms_batch1", 1.0, "max"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="full")
    parser.add_argument("--epochs", type=int, default=None, help="override trainer.epochs (default: the profile's)")
    parser.add_argument("--out", default=None, help="run directory (default: runs/bench-trc-control-<profile>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra KEY=VALUE overrides")
    parser.add_argument("--results", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: small models on a shared CPU run faster)"
    )
    parser.add_argument(
        "--nonlinear",
        default=None,
        help="comma-separated nonlinear systems (pendulum, vanderpol, rocket): the nonlinear section",
    )
    parser.add_argument(
        "--nonlinear-suffix",
        default="",
        help="nonlinear section: write under nonlinear.<system><suffix> (keeps an earlier record)",
    )
    parser.add_argument("--num-samples", type=int, default=1000, help="nonlinear section: training problems")
    parser.add_argument(
        "--data-suffix",
        default="",
        help="nonlinear and closed-loop sections: cached data under data/trc_nonlinear/<system><suffix>_<split>",
    )
    parser.add_argument(
        "--data-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="nonlinear and closed-loop sections: a dataset config value for data generated here "
        "(e.g. expert_library=32; give the folder its own --data-suffix)",
    )
    parser.add_argument("--test-samples", type=int, default=200, help="nonlinear section: test problems")
    parser.add_argument(
        "--horizon-range", default=None, help="nonlinear section: 'T_min,T_max' for an extra run over a horizon range"
    )
    parser.add_argument(
        "--range-only", action="store_true", help="nonlinear section: only the --horizon-range run of each system"
    )
    parser.add_argument(
        "--expert-check",
        default=None,
        help="comma-separated nonlinear systems: expert vs iLQR vs LQR on the same test problems",
    )
    parser.add_argument(
        "--linear-horizons",
        default=None,
        help="'T_min,T_max': the linear system (--system) trained on a fixed horizon vs on this range",
    )
    parser.add_argument("--system", default="double_integrator", help="--linear-horizons: the linear system")
    parser.add_argument(
        "--variants",
        default="fixed,fixed_no_projection,range,range_projection",
        help="--linear-horizons: which runs (fixed, fixed_no_projection, range, range_projection); "
        "others are kept from the JSON",
    )
    parser.add_argument(
        "--closed-loop", default=None, help="comma-separated nonlinear systems: the closed-loop section"
    )
    parser.add_argument("--closed-loop-set", action="append", default=[], help="closed-loop section: extra KEY=VALUE")
    parser.add_argument(
        "--closed-loop-suffix",
        default="",
        help="closed-loop section: write under closed_loop.<system><suffix> (keeps an earlier record)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="closed-loop section: the run's seed (weights, batches; not the data)"
    )
    parser.add_argument("--quick-check", action="store_true", help="the quick profile's wall time and success")
    parser.add_argument("--latency", action="store_true", help="batch-1 latency of the medium model")
    parser.add_argument(
        "--projection-latency",
        action="store_true",
        help="batch-1 ONNX latency of the small and medium models: fixed-horizon vs horizon-aware projection",
    )
    parser.add_argument(
        "--other-systems",
        default=None,
        help="comma-separated systems: run each (with --profile) and add its comparison to the existing JSON",
    )
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)

    import logging

    import mlcore

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    overrides = [*args.overrides, "trainer.progress=false"]
    if args.epochs is not None:
        overrides.append(f"trainer.epochs={args.epochs}")
    if args.closed_loop:
        return closed_loop(args, overrides)
    if args.quick_check:
        return quick_check(args)
    if args.latency:
        return latency(args)
    if args.projection_latency:
        return projection_latency(args)
    if args.other_systems:
        return other_systems(args, overrides)
    if args.expert_check:
        return expert_check(args)
    if args.linear_horizons:
        return linear_horizons(args, overrides)
    if args.nonlinear:
        return nonlinear(args, overrides)
    out = Path(args.out or ROOT / "runs" / f"bench-trc-control-{args.profile}")
    start = time.perf_counter()
    result = mlcore.run("trc-control", profile=args.profile, overrides=overrides, out=out, device="cpu", progress=False)
    wall = time.perf_counter() - start
    metrics = result.metrics
    evaluation = json.loads((out / "evaluation_results.json").read_text())
    comparison = json.loads((out / "comparison_results.json").read_text())
    export = json.loads((out / "export.json").read_text()) if (out / "export.json").exists() else {}
    config = (out / "config.toml").read_text()

    rows = []
    for name, target, mode in TARGETS:
        value = float(metrics.get(name, export.get(name, float("nan"))))
        ok = value >= target if mode == "min" else value <= target
        rows.append(
            {"metric": name, "value": value, "target": f"{'>=' if mode == 'min' else '<='} {target:g}", "met": ok}
        )
    extra = [
        ("error_gap", metrics["error_gap"]),
        ("cost_gap_lqr", metrics["cost_gap_lqr"]),
        ("inference_ms_batched", metrics["inference_ms_batched"]),
        ("onnx_ms_batch1", export.get("onnx_ms_batch1", float("nan"))),
        ("num_parameters", metrics["num_parameters"]),
        ("train_seconds", metrics["train_seconds"]),
        ("epochs_run", metrics["epochs_run"]),
        ("wall_seconds", wall),
    ]
    print()
    print(f"{'metric':<24} {'value':>12}  {'target':<10} met")
    for r in rows:
        print(f"{r['metric']:<24} {r['value']:>12.5g}  {r['target']:<10} {'yes' if r['met'] else 'NO'}")
    for name, value in extra:
        print(f"{name:<24} {float(value):>12.5g}")
    print(f"\nexpert: {evaluation['expert']} ({evaluation['expert_reason']})")
    print("\nbaselines (test set):")
    for b in comparison["baselines"]:
        print(
            f"  {b['method']:<30} err {b['mean_terminal_error']:.4g}  "
            f"success {b['success_rate']:.4f}  cost {b['mean_cost']:.4g}"
        )

    import tomllib

    cfg = tomllib.loads(config)
    dataset = cfg.get("dataset", cfg.get("data", {}))
    scale = {
        "profile": args.profile,
        "epochs": int(metrics["epochs_run"]),
        "num_samples": dataset.get("num_samples"),
        "test_num_samples": dataset.get("test_num_samples"),
        "model_size": cfg.get("model", {}).get("size"),
        "reduced": bool(args.epochs is not None or args.overrides),
    }
    record = {
        "benchmark": "trc_control",
        "scale": scale,
        "profile": args.profile,
        "overrides": overrides,
        "run_dir": str(out),
        "machine": machine_info(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "targets": rows,
        "metrics": metrics,
        "wall_seconds": wall,
        "expert": evaluation["expert"],
        "expert_reason": evaluation["expert_reason"],
        "baselines": comparison["baselines"],
        "cycle_sweep": comparison["cycle_sweep"],
        "generalisation": comparison.get("generalisation", []),
        "export": export,
        "config_toml": config,
    }
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")
    return 0


def other_systems(args: argparse.Namespace, overrides: list[str]) -> int:
    """Run each system of ``--other-systems`` and store its comparison under ``other_systems`` in the JSON."""
    import mlcore

    path = Path(args.results)
    record = json.loads(path.read_text()) if path.exists() else {"benchmark": "trc_control"}
    found = record.setdefault("other_systems", {})
    for system in args.other_systems.split(","):
        out = Path(args.out or ROOT / "runs" / "bench-trc-control-systems") / system
        start = time.perf_counter()
        result = mlcore.run(
            "trc-control",
            profile=args.profile,
            overrides=[*overrides, f"dataset.system={system}", "comparison.generalisation=false"],
            out=out,
            device="cpu",
            progress=False,
        )
        comparison = json.loads((out / "comparison_results.json").read_text())
        found[system] = {
            "profile": args.profile,
            "overrides": overrides,
            "machine": machine_info(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "wall_seconds": time.perf_counter() - start,
            "metrics": result.metrics,
            "baselines": comparison["baselines"],
            "cycle_sweep": comparison["cycle_sweep"],
        }
        print(f"\n{system} ({args.profile}):")
        for b in comparison["baselines"]:
            print(
                f"  {b['method']:<30} err {b['mean_terminal_error']:.4g}  "
                f"success {b['success_rate']:.4f}  cost {b['mean_cost']:.4g}  "
                f"exceeds box {b['limit_violation_rate']:.3f}"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")
    return 0


def _cached_data(
    system: str,
    split: str,
    num: int,
    seed: int,
    horizon_range: list[float] | None,
    suffix: str = "",
    settings: list[str] | tuple[str, ...] = (),
) -> Path:
    """``data/trc_nonlinear/<system>[_range]<suffix>_<split>``, generated (multiple shooting) unless already
    there (a folder keeps the labels of the expert that wrote it: a new ``--data-suffix`` regenerates).
    ``settings`` (``KEY=VALUE``, values parsed as ``--set`` parses them) are further dataset config values
    for the generation."""
    from mlcore.config import apply_overrides, structure
    from mlcore_trc_control.data import DATA_FILE, LQRData, LQRDataConfig

    folder = DATA / f"{system}{'_range' if horizon_range else ''}{suffix}_{split}"
    if not (folder / DATA_FILE).exists():
        given = {"system": system, "num_samples": num, "seed": seed, "horizon_range": horizon_range}
        cfg = structure(LQRDataConfig, apply_overrides(given, settings), where="dataset.")
        LQRData(cfg).generate(folder)
    return folder


def label_sensitivity(test: Path, sigmas: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2), seed: int = 0) -> list[dict]:
    """Success and cost of the expert's own test controls plus Gaussian noise (clipped to the box):
    how precisely an open-loop policy must reproduce them on this system."""
    import numpy as np

    from mlcore_trc_control.data import LQRProblemSet

    problems = LQRProblemSet.load(test)
    limit = problems.system.control_limit or np.inf
    rng = np.random.default_rng(seed)
    rows = []
    for sigma in sigmas:
        noisy = np.clip(
            problems.control_sequences + rng.normal(0.0, sigma, problems.control_sequences.shape), -limit, limit
        )
        states = problems.rollout(noisy)
        errors = problems.terminal_errors(states)
        costs = problems.system.cost(states, noisy, problems.target_states)
        rows.append(
            {
                "sigma": sigma,
                "success_rate": float(np.mean(errors < 0.1)),
                "median_terminal_error": float(np.median(errors)),
                "cost_gap": float(costs.mean() / problems.optimal_costs.mean() - 1.0),
            }
        )
    return rows


def _nonlinear_run(
    args: argparse.Namespace, overrides: list[str], system: str, horizon_range: list[float] | None
) -> dict:
    import os

    import mlcore
    from mlcore_trc_control.data import LQRProblemSet

    train = _cached_data(system, "train", args.num_samples, 42, horizon_range, args.data_suffix, args.data_set)
    test = _cached_data(system, "test", args.test_samples, 123, horizon_range, args.data_suffix, args.data_set)
    name = f"{system}{'_range' if horizon_range else ''}{args.nonlinear_suffix}"
    out = Path(args.out or ROOT / "runs" / "bench-trc-control-nonlinear") / name
    run_overrides = [
        f"dataset.system={system}",
        f"dataset.path={train}",
        f"dataset.test_path={test}",
        *([f"dataset.horizon_range=[{horizon_range[0]}, {horizon_range[1]}]"] if horizon_range else []),
        *overrides,
    ]
    start = time.perf_counter()
    result = mlcore.run(
        "trc-control", profile=args.profile, overrides=run_overrides, out=out, device="cpu", progress=False
    )
    wall = time.perf_counter() - start
    comparison = json.loads((out / "comparison_results.json").read_text())
    evaluation = json.loads((out / "evaluation_results.json").read_text())
    metrics = result.metrics
    targets = []
    for metric, target, mode in NONLINEAR_TARGETS:
        value = float(metrics[metric])
        ok = value >= target if mode == "min" else value <= target
        targets.append(
            {"metric": metric, "value": value, "target": f"{'>=' if mode == 'min' else '<='} {target:g}", "met": ok}
        )
    rows = {r["method"]: r for r in comparison["baselines"]}
    linear = rows.get("linear, clipped to the box", rows.get("linear (least squares)"))
    record = {
        "system": system,
        "horizon_range": horizon_range,
        "profile": args.profile,
        "overrides": run_overrides,
        "machine": machine_info(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_seconds": wall,
        "train_seconds": metrics.get("train_seconds"),
        "load_avg_1min": os.getloadavg()[0],
        "train_problems": len(LQRProblemSet.load(train)),
        "test_problems": int(metrics["num_problems"]),
        "targets": targets,
        "trc_ahead_of_linear": bool(
            linear is not None
            and metrics["success_rate"] >= linear["success_rate"]
            and metrics["lqr_cost"] < linear["mean_cost"]
        ),
        "metrics": metrics,
        "expert": evaluation["expert"],
        "expert_reason": evaluation["expert_reason"],
        "baselines": comparison["baselines"],
        "cycle_sweep": comparison["cycle_sweep"],
        "generalisation": comparison.get("generalisation", []),
        "refinement": comparison.get("refinement", []),
        "label_noise_sensitivity": label_sensitivity(test),
    }
    print(f"\n{name} ({wall:.0f} s):")
    for t in targets:
        print(f"  {t['metric']:<14} {t['value']:>10.4g}  {t['target']:<8} {'yes' if t['met'] else 'NO'}")
    for b in comparison["baselines"]:
        print(
            f"  {b['method'][:58]:<58} err {b['mean_terminal_error']:.4g}  success {b['success_rate']:.3f}  "
            f"cost {b['mean_cost']:.5g}  gap {b['cost_gap_vs_oracle']:+.4f}"
        )
    for r in comparison.get("refinement", []):
        print(
            f"  iLQR from {r['warm_start'][:28]:<28} {r['iterations']:>3} it  success {r['success_rate']:.3f}  "
            f"gap {r['cost_gap']:+.4f}  {r['ms_per_problem']:.1f} ms/problem"
        )
    for g in comparison.get("generalisation", []):
        if "success_rate" in g:
            print(f"  {g['scenario']:<50} success {g['success_rate']:.3f}  gap {g['cost_gap']:+.4f}")
    return record


def nonlinear(args: argparse.Namespace, overrides: list[str]) -> int:
    """Each system of ``--nonlinear`` (and a horizon-range run) into the JSON's ``nonlinear`` section
    (merged by system: other systems' entries and other sections are kept)."""
    path = Path(args.results)
    horizon = [float(v) for v in args.horizon_range.split(",")] if args.horizon_range else None
    start = time.perf_counter()
    found = {}
    for system in args.nonlinear.split(","):
        if not (args.range_only and horizon is not None):
            found[system + args.nonlinear_suffix] = _nonlinear_run(args, overrides, system, None)
        if horizon is not None:
            found[f"{system}_range{args.nonlinear_suffix}"] = _nonlinear_run(args, overrides, system, horizon)
    record = json.loads(path.read_text()).get("nonlinear", {}) if path.exists() else {}
    record.update(found)
    _merge_key(path, "nonlinear", record)
    print(f"\nwrote {path} ({time.perf_counter() - start:.0f} s)")
    return 0


def _merge_key(path: Path, key: str, value: dict) -> None:
    """Write ``value`` under ``key`` of the results JSON, keeping every other key (re-read just before writing)."""
    from mlcore.io import atomic_write_text

    record = json.loads(path.read_text()) if path.exists() else {"benchmark": "trc_control"}
    record[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2, default=str) + "\n")


def _method_row(name: str, sol: object, problems: object, expert_costs: object) -> dict:
    import numpy as np

    errors = problems.terminal_errors(sol.states)  # type: ignore[attr-defined]
    row = {
        "method": name,
        "success_rate": float(np.mean(errors < 0.1)),
        "mean_terminal_error": float(errors.mean()),
        "median_terminal_error": float(np.median(errors)),
        "mean_cost": float(sol.costs.mean()),  # type: ignore[attr-defined]
        "cost_vs_expert": float(sol.costs.mean() / np.mean(expert_costs) - 1.0),  # type: ignore[attr-defined]
        "status_counts": {s: sol.status.count(s) for s in sorted(set(sol.status))}  # type: ignore[attr-defined]
        if hasattr(sol, "status")
        else {},
        "seconds": float(getattr(sol, "seconds", float("nan"))),
    }
    if problems.system.name == "rocket":  # type: ignore[attr-defined]
        row["below_ground_rate"] = float(np.mean(sol.states[:, 1:, 2].min(axis=1) < -1e-3))  # type: ignore[attr-defined]
    return row


def expert_check(args: argparse.Namespace) -> int:
    """The nonlinear expert vs iLQR vs LQR on the linearisation, same test problems, per system."""
    import os

    import numpy as np

    from mlcore_trc_control.data import LQRProblemSet
    from mlcore_trc_control.nonlinear.expert import lqr_on_linearisation, multiple_shooting
    from mlcore_trc_control.nonlinear.ilqr import ilqr

    found = {}
    for system in args.expert_check.split(","):
        test = _cached_data(system, "test", args.test_samples, 123, None, args.data_suffix, args.data_set)
        ps = LQRProblemSet.load(test)
        sysm, x0, r, horizons = ps.system, ps.initial_states, ps.target_states, ps.horizons()
        lqr = lqr_on_linearisation(sysm, x0, r, horizons)
        load_lqr = os.getloadavg()[0]
        il = ilqr(sysm, x0, r, horizons, init=lqr.controls)
        load_ilqr = os.getloadavg()[0]
        soft = multiple_shooting(sysm, x0, r, horizons, lqr=lqr, terminal=False)
        load_soft = os.getloadavg()[0]
        rows = [
            {
                **_method_row("multiple shooting (x_N = r): the expert's labels", _Labels(ps), ps, ps.optimal_costs),
                "seconds": ps.metadata.get("generated_seconds"),
                "note": "generation time of the whole test set (expert + LQR)",
            },
            _method_row("multiple shooting, soft terminal cost (iLQR's problem)", soft, ps, ps.optimal_costs),
            _method_row("iLQR (from the LQR controls)", il, ps, ps.optimal_costs),
            {
                **_method_row("LQR on the linearisation (closed loop)", lqr, ps, ps.optimal_costs),
                "load_avg_1min": load_lqr,
            },
        ]
        rows[1]["load_avg_1min"], rows[2]["load_avg_1min"] = load_soft, load_ilqr
        expert_row, ilqr_row, lqr_row = rows[0], rows[2], rows[3]
        found[system] = {
            "test_problems": len(ps),
            "data": str(test),
            "machine": machine_info(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "rows": rows,
            "expert_success_at_least_ilqr_and_lqr": expert_row["success_rate"]
            >= max(ilqr_row["success_rate"], lqr_row["success_rate"]),
            "expert_cost_at_most_lqr": expert_row["mean_cost"] <= lqr_row["mean_cost"],
            "expert_cost_at_most_ilqr": expert_row["mean_cost"] <= ilqr_row["mean_cost"],
            "soft_expert_cost_at_most_ilqr": rows[1]["mean_cost"] <= ilqr_row["mean_cost"] * (1 + 1e-9),
            "soft_expert_not_costlier_per_problem": float(np.mean(soft.costs <= il.costs * (1 + 1e-6))),
        }
        print(f"\n{system} ({len(ps)} test problems):")
        for row in rows:
            extra = f"  below ground {row['below_ground_rate']:.2f}" if "below_ground_rate" in row else ""
            print(
                f"  {row['method'][:56]:<56} success {row['success_rate']:.3f}  err {row['mean_terminal_error']:.3g}  "
                f"cost {row['mean_cost']:.6g} ({row['cost_vs_expert']:+.4f}){extra}"
            )
    path = Path(args.results)
    record = json.loads(path.read_text()).get("nonlinear_expert_check", {}) if path.exists() else {}
    record.update(found)
    _merge_key(path, "nonlinear_expert_check", record)
    print(f"\nwrote {path}")
    return 0


class _Labels:
    """A stored data set's expert labels in the shape of a solver result."""

    def __init__(self, ps: object) -> None:
        self.states = ps.state_trajectories  # type: ignore[attr-defined]
        self.costs = ps.optimal_costs  # type: ignore[attr-defined]
        summary = ps.metadata.get("expert_summary", {})  # type: ignore[attr-defined]
        counts = summary.get("status_counts", {})
        self.status = [s for s, c in counts.items() for _ in range(int(c))]


def linear_horizons(args: argparse.Namespace, overrides: list[str]) -> int:
    """A linear system trained on its one horizon vs on ``--linear-horizons``; same test problems."""
    import os

    import mlcore

    low, high = (float(v) for v in args.linear_horizons.split(","))
    path = Path(args.results)
    previous = json.loads(path.read_text()).get("linear_horizons", {}) if path.exists() else {}
    found = {"system": args.system, "profile": args.profile, "horizon_range": [low, high], "runs": {}}
    if previous.get("system") == args.system and previous.get("horizon_range") == [low, high]:
        found["runs"] = previous.get("runs", {})  # keep the variants not re-run now
    variants = {
        "fixed": [],
        # the same model without the terminal projection (which a horizon range switches off)
        "fixed_no_projection": ["model.terminal_projection=false", "model.output_bound=true"],
        # a range without the terminal projection (the pipeline's behaviour before it was horizon-aware)
        "range": [
            f"dataset.horizon_range=[{low}, {high}]",
            "model.terminal_projection=false",
            "model.output_bound=true",
        ],
        # a range with the horizon-aware terminal projection (the pipeline's default for a range)
        "range_projection": [f"dataset.horizon_range=[{low}, {high}]"],
    }
    for name in args.variants.split(","):
        extra = variants[name]
        out = Path(args.out or ROOT / "runs" / "bench-trc-control-horizons") / f"{args.system}_{name}"
        run_overrides = [f"dataset.system={args.system}", *extra, *overrides]
        start = time.perf_counter()
        result = mlcore.run(
            "trc-control", profile=args.profile, overrides=run_overrides, out=out, device="cpu", progress=False
        )
        wall = time.perf_counter() - start
        comparison = json.loads((out / "comparison_results.json").read_text())
        found["runs"][name] = {
            "overrides": run_overrides,
            "wall_seconds": wall,
            "load_avg_1min": os.getloadavg()[0],
            "train_seconds": result.metrics.get("train_seconds"),
            "metrics": result.metrics,
            "generalisation": comparison.get("generalisation", []),
        }
        print(f"\n{args.system} trained on {name} horizon(s) ({wall:.0f} s):")
        for g in comparison.get("generalisation", []):
            if "success_rate" in g:
                print(f"  {g['scenario']:<50} success {g['success_rate']:.3f}  gap {g['cost_gap']:+.4f}")
    found["machine"] = machine_info()
    found["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    _merge_key(path, "linear_horizons", found)
    print(f"\nwrote {path}")
    return 0


def _merge(path: Path, key: str, value: object, subkey: str | None = None) -> None:
    """Write ``record[key]`` (or ``record[key][subkey]``) into the JSON, re-reading it first so
    other sections written meanwhile are kept."""
    record = json.loads(path.read_text()) if path.exists() else {"benchmark": "trc_control"}
    if subkey is None:
        record[key] = value
    else:
        section = record.get(key)
        record[key] = {**(section if isinstance(section, dict) else {}), subkey: value}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    tmp.replace(path)


def _load() -> float:
    import os

    return round(os.getloadavg()[0], 2)


#: the closed-loop section's defaults (``--closed-loop-set KEY=VALUE`` adds or overrides)
CLOSED_LOOP_SETTINGS = [
    "closed_loop.enabled=true",
    "closed_loop.problems=50",
    "closed_loop.replan_every=5",
    "closed_loop.horizon=shrinking",
    "closed_loop.noise_levels=[0.0, 0.01]",
    "closed_loop.dagger_rounds=2",
    "closed_loop.dagger_problems=100",
    "closed_loop.dagger_states=200",
    "closed_loop.dagger_epochs=10",
    "comparison.generalisation=false",
    "comparison.sweep_cycles=[1, 2, 3, 4]",
]


def closed_loop(args: argparse.Namespace, overrides: list[str]) -> int:
    """Each system of ``--closed-loop``: open vs closed loop, DAgger, halting; JSON key ``closed_loop``."""
    import mlcore

    path = Path(args.results)
    for system in args.closed_loop.split(","):
        train = _cached_data(system, "train", args.num_samples, 42, None, args.data_suffix, args.data_set)
        test = _cached_data(system, "test", args.test_samples, 123, None, args.data_suffix, args.data_set)
        out = Path(args.out or ROOT / "runs" / "bench-trc-control-closed-loop") / (system + args.closed_loop_suffix)
        run_overrides = [
            f"dataset.system={system}",
            f"dataset.path={train}",
            f"dataset.test_path={test}",
            *CLOSED_LOOP_SETTINGS,
            *args.closed_loop_set,
            *overrides,
        ]
        load_before = _load()
        start = time.perf_counter()
        result = mlcore.run(
            "trc-control",
            profile=args.profile,
            overrides=run_overrides,
            out=out,
            device="cpu",
            progress=False,
            seed=args.seed,
        )
        wall = time.perf_counter() - start
        loop = json.loads((out / "closed_loop_results.json").read_text())
        comparison = json.loads((out / "comparison_results.json").read_text())
        rows = loop["rows"]
        first = loop["config"]["noise_levels"][0]
        # the target row: TRC after closed-loop fine-tuning if it ran, else after DAgger
        tuned = "closed-loop fine-tuning" if any("fine-tuning" in r["method"] for r in rows) else "DAgger"
        learned = f"TRC + ... {tuned}"
        trc = {
            r["loop"]: r
            for r in rows
            if r["method"].startswith("TRC +") and tuned in r["method"] and r["control_noise"] == first
        }
        best = trc.get("closed", {})
        linear = next(
            (
                r
                for r in rows
                if r["method"].startswith("linear") and r["loop"] == "closed" and r["control_noise"] == first
            ),
            None,
        )
        record = {
            "system": system,
            "profile": args.profile,
            "overrides": run_overrides,
            "seed": args.seed if args.seed is not None else 0,
            "machine": machine_info(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "load_average_1min": {"before": load_before, "after": _load()},
            "wall_seconds": wall,
            "train_seconds": result.metrics.get("train_seconds"),
            "closed_loop_seconds": result.metrics.get("closed_loop_seconds"),
            "targets": [
                {
                    "metric": f"success_rate ({learned}, closed loop)",
                    "value": best.get("success_rate"),
                    "target": ">= 0.95",
                    "met": bool(best and best["success_rate"] >= 0.95),
                },
                {
                    "metric": f"cost_gap ({learned}, closed loop)",
                    "value": best.get("cost_gap"),
                    "target": "<= 0.05",
                    "met": bool(best and best["cost_gap"] <= 0.05),
                },
            ],
            "trc_ahead_of_linear_closed_loop": bool(
                best
                and linear
                and best["success_rate"] >= linear["success_rate"]
                and best["cost_gap"] < linear["cost_gap"]
            ),
            "rows": rows,
            "dagger": loop["dagger"],
            "finetune": loop.get("finetune", {}),
            "baselines_open_loop": comparison["baselines"],
            "cycle_sweep": comparison["cycle_sweep"],
            "halting": comparison.get("halting", []),
            "num_problems": loop["num_problems"],
        }
        _merge(path, "closed_loop", record, system + args.closed_loop_suffix)
        print(f"\n{system} ({wall:.0f} s, load {load_before} -> {record['load_average_1min']['after']}):")
        for r in rows:
            print(
                f"  {r['method'][:40]:<40} {r['loop']:<6} noise {r['control_noise']:<6g} "
                f"success {r['success_rate']:.3f}  gap {r['cost_gap']:+.4f}"
            )
        for h in record["halting"]:
            print(f"  halting tol {h['tolerance']:<6g} cycles {h['mean_cycles']:.2f}  success {h['success_rate']:.3f}")
    print(f"\nwrote {path}")
    return 0


def quick_check(args: argparse.Namespace) -> int:
    """The double integrator's quick profile: wall time and success; JSON key ``quick_profile``."""
    import mlcore

    out = Path(args.out or ROOT / "runs" / "bench-trc-control-quick")
    load_before = _load()
    start = time.perf_counter()
    result = mlcore.run(
        "trc-control", profile="quick", overrides=["trainer.progress=false"], out=out, device="cpu", progress=False
    )
    wall = time.perf_counter() - start
    m = result.metrics
    record = {
        "machine": machine_info(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_1min": {"before": load_before, "after": _load()},
        "wall_seconds": wall,
        "train_seconds": m.get("train_seconds"),
        "success_rate": m["success_rate"],
        "mean_terminal_error": m["mean_terminal_error"],
        "cost_gap": m["cost_gap"],
        "targets": [
            {
                "metric": "success_rate",
                "value": m["success_rate"],
                "target": ">= 0.95",
                "met": m["success_rate"] >= 0.95,
            },
            {"metric": "wall_seconds", "value": wall, "target": "<= 60", "met": wall <= 60},
        ],
    }
    _merge(Path(args.results), "quick_profile", record)
    print(json.dumps(record["targets"], indent=1), f"load {record['load_average_1min']}")
    return 0


def projection_latency(args: argparse.Namespace, repeats: int = 300, rounds: int = 7) -> int:
    """Batch-1 ONNX Runtime latency (1 thread) of the small and medium TRC on the double integrator
    with no projection, the fixed-horizon projection and the horizon-aware one over [4, 6] s;
    JSON key ``projection_latency``."""
    import statistics
    import tempfile

    import onnxruntime as ort
    import torch

    from mlcore_trc_control.lqr.systems import build_system
    from mlcore_trc_control.models.config import TRCConfig
    from mlcore_trc_control.models.trc import TinyRecursiveControl

    variants = {
        "no_projection": {"terminal_projection": False},
        "fixed_horizon_projection": {},
        "horizon_aware_projection": {"projection_horizons": [4.0, 6.0]},
    }
    sessions = {}
    load_before = _load()
    with tempfile.TemporaryDirectory() as tmp:
        for size in ("small", "medium"):
            for name, extra in variants.items():
                model = TinyRecursiveControl(TRCConfig(size=size, **extra)).eval()
                model.set_system(build_system("double_integrator"))
                x = model.example_input(1)
                onnx_path = Path(tmp) / f"trc_{size}_{name}.onnx"
                with torch.no_grad():
                    torch.onnx.export(model, (x,), str(onnx_path), input_names=["problems"], dynamo=False)
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1
                session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
                sessions[(size, name)] = (session, x.numpy())
    # interleaved rounds, so a burst of load on the shared machine hits every variant alike
    medians: dict[tuple[str, str], list[float]] = {key: [] for key in sessions}
    for _ in range(rounds):
        for key, (session, feed) in sessions.items():
            for _ in range(20):
                session.run(None, {"problems": feed})
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                session.run(None, {"problems": feed})
                times.append(time.perf_counter() - start)
            medians[key].append(1000.0 * statistics.median(times))
    rows = [
        {
            "size": size,
            "projection": name,
            "onnx_ms_batch1": statistics.median(values),
            "onnx_ms_batch1_best_round": min(values),
            "rounds_ms": values,
        }
        for (size, name), values in medians.items()
    ]
    for row in rows:
        best = row["onnx_ms_batch1_best_round"]
        print(f"{row['size']:<7} {row['projection']:<26} {row['onnx_ms_batch1']:.3f} ms (best round {best:.3f})")
    found = {
        "rows": rows,
        "repeats": repeats,
        "rounds": rounds,
        "machine": machine_info(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_1min": {"before": load_before, "after": _load()},
        "note": "untrained weights (latency does not depend on the values); legacy ONNX exporter as in --latency",
    }
    path = Path(args.results)
    _merge_key(path, "projection_latency", found)
    print(f"wrote {path}")
    return 0


def latency(args: argparse.Namespace, repeats: int = 300) -> int:
    """Batch-1 latency of the medium TRC (eager, TorchScript, ONNX Runtime, 1 thread); JSON key ``latency``."""
    import statistics
    import tempfile

    import torch

    from mlcore_trc_control.evaluation import freeze_for_inference
    from mlcore_trc_control.lqr.systems import build_system
    from mlcore_trc_control.models.trc import TinyRecursiveControl

    model = TinyRecursiveControl.create_medium().eval()
    model.set_system(build_system("double_integrator"))
    x = model.example_input(1)

    def timed(fn: object) -> float:
        for _ in range(20):
            fn(x)  # type: ignore[operator]
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(x)  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return 1000.0 * statistics.median(times)

    load_before = _load()
    out: dict[str, object] = {
        "parameters": model.num_parameters(),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
    }
    with torch.inference_mode():
        out["eager_ms_batch1"] = timed(model)
    with torch.no_grad():
        frozen = freeze_for_inference(model, x)
        out["torchscript_ms_batch1"] = timed(frozen)
    try:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = Path(tmp) / "trc.onnx"
            torch.onnx.export(model, (x,), str(onnx_path), input_names=["problems"], dynamo=False)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
            feed = x.numpy()
            out["onnx_ms_batch1"] = timed(lambda _x: session.run(None, {"problems": feed}))
    except ImportError:
        out["onnx_ms_batch1"] = None
    out.update(
        {
            "machine": machine_info(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "load_average_1min": {"before": load_before, "after": _load()},
            "note": "medium preset, untrained weights (latency does not depend on the values), terminal projection on",
        }
    )
    best = min(v for k, v in out.items() if k in ("torchscript_ms_batch1", "onnx_ms_batch1") and isinstance(v, float))
    out["target"] = {
        "metric": "deployed-path batch-1 latency (best of TorchScript, ONNX Runtime)",
        "value": best,
        "target": "<= 1 ms",
        "met": best <= 1.0,
    }
    _merge(Path(args.results), "latency", out)
    print(json.dumps({k: v for k, v in out.items() if k != "machine"}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    from mlcore.errors import MlcoreError

    try:
        sys.exit(main())
    except MlcoreError as exc:  # a bad setting or data file: one line, not a traceback
        sys.exit(f"error: {exc}")
