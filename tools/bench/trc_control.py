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
    if args.other_systems:
        return other_systems(args, overrides)
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


if __name__ == "__main__":
    sys.exit(main())
