"""Benchmark: the continuous-dynamics comparison on CPU against the issue's targets.

Three parts (``--parts``, default all), each written into ``tools/bench/results/continuous_dynamics.json``
(a part not run keeps its previous entry):

- ``compare``: ``mlcore run --plugin continuous-dynamics --profile P`` (all five models, the two
  references, the weather ablation); the table of the headline figures against the targets.
- ``step``: the mean wall time of one training step (forward + backward + Adam, batch 32, one
  thread, the default configs) of ``gru_dynamics`` and ``neural_ode`` on the same windows; target
  Neural ODE <= 3x GRU.
- ``parallel``: the fast group (``linear_dynamics``, ``gru_dynamics``) trained side by side by
  :mod:`mlcore.parallel` (``max_parallel=2``) and one after another (``max_parallel=1``), same jobs,
  same data: the wall-time gain of running them in parallel on this machine.

Nothing is extrapolated: every figure is measured at the scale recorded next to it (``scale``).

    python tools/bench/continuous_dynamics.py --profile medium
    python tools/bench/continuous_dynamics.py --parts step,parallel --profile quick
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import machine_info, print_table

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tools" / "bench" / "results" / "continuous_dynamics.json"
MODELS = ("linear_dynamics", "gru_dynamics", "lstm_predictor", "neural_ode", "vae_rnn_hybrid")
NONLINEAR = MODELS[1:]
#: the issue's targets
ONE_STEP_MSE_MAX = 0.01
ODE_STEP_RATIO_MAX = 3.0


def bench_compare(profile: str, out: Path, overrides: list[str], threads: int) -> dict[str, Any]:
    import mlcore

    start = time.perf_counter()
    result = mlcore.run(
        "continuous-dynamics", profile=profile, overrides=overrides, out=out, device="cpu", threads=threads
    )
    seconds = time.perf_counter() - start
    comparison = json.loads((result.out_dir / "comparison.json").read_text(encoding="utf-8"))
    config = (result.out_dir / "config.toml").read_text(encoding="utf-8")
    rows = []
    for r in comparison["rows"]:
        curve = r.get("curve") or []
        rows.append(
            {
                "name": r["name"],
                "status": r["status"],
                "one_step_mse": r.get("mse"),
                "rollout_mse_h10": curve[9] if len(curve) >= 10 else None,
                "rollout_mse_h50": curve[49] if len(curve) >= 50 else None,
                "groups": r.get("groups"),
                "train_seconds": r.get("train_seconds"),
                "params": r.get("params"),
                "best_epoch": r.get("best_epoch"),
                "epochs_run": r.get("epochs_run"),
                "perm_increase": r.get("perm_increase"),
            }
        )
    by = {r["name"]: r for r in rows}
    ablation = comparison["ablation"]
    targets = {
        "one_step_mse_le_0.01_nonlinear": {
            m: (by[m]["one_step_mse"] is not None and by[m]["one_step_mse"] <= ONE_STEP_MSE_MAX) for m in NONLINEAR
        },
        "rollout_h50_reported_for_all": all(by[m]["rollout_mse_h50"] is not None for m in MODELS),
        "weather_ablation_effect": {a["withheld"]: a["ratio"] for a in ablation},
    }
    return {
        "profile": profile,
        "overrides": overrides,
        "run_dir": str(result.out_dir),
        "seconds": seconds,
        "train_wall_seconds": comparison["wall_time"],
        "config_toml": config,
        "rows": rows,
        "ablation": ablation,
        "targets": targets,
    }


def bench_step(repeats: int) -> dict[str, Any]:
    import torch

    from mlcore_continuous_dynamics.configs import GRUConfig, NeuralODEConfig, VehicleEpisodesConfig
    from mlcore_continuous_dynamics.data import VehicleEpisodes
    from mlcore_continuous_dynamics.models.ode import NeuralODE
    from mlcore_continuous_dynamics.models.recurrent import GRUDynamics

    torch.set_num_threads(1)
    data = VehicleEpisodes(VehicleEpisodesConfig(episodes=6, episode_seconds=5.0)).prepare()
    batch = next(iter(torch.utils.data.DataLoader(data.train_set(), batch_size=32, shuffle=False)))
    out: dict[str, Any] = {"batch_size": 32, "repeats": repeats, "threads": 1}
    for name, model in (("gru_dynamics", GRUDynamics(GRUConfig())), ("neural_ode", NeuralODE(NeuralODEConfig()))):
        model.dt_ref.fill_(data.nominal_dt)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        inputs, target = batch

        def step(model: Any = model, opt: Any = opt, inputs: Any = inputs, target: Any = target) -> None:
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(inputs), target).backward()
            opt.step()

        for _ in range(5):
            step()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        times.sort()
        out[name] = {"median_ms": 1000 * times[len(times) // 2], "min_ms": 1000 * times[0]}
    out["ode_over_gru_median"] = out["neural_ode"]["median_ms"] / out["gru_dynamics"]["median_ms"]
    out["ode_over_gru_min"] = out["neural_ode"]["min_ms"] / out["gru_dynamics"]["min_ms"]
    out["target_met"] = out["ode_over_gru_median"] <= ODE_STEP_RATIO_MAX
    out["neural_ode_config"] = {"solver": "rk4", "step_fraction": 0.5, "hidden_dim": 128}
    return out


def bench_parallel(profile: str, out: Path, overrides: list[str]) -> dict[str, Any]:
    try:
        from mlcore.parallel import Job, run_jobs
    except ImportError:
        return {"skipped": "mlcore.parallel is not available in this checkout"}
    import mlcore.api
    from mlcore.runs import RunContext
    from mlcore_continuous_dynamics.compare import ComparePipeline
    from mlcore_continuous_dynamics.data import VehicleEpisodes

    resolved = mlcore.api.resolve("continuous-dynamics", profile=profile, overrides=overrides)
    cfg = resolved.config
    data_dir = out / "data"
    if not (data_dir / "episodes.npz").is_file():
        VehicleEpisodes(cfg.dataset).generate(data_dir)
    import torch

    ctx = RunContext(out, torch.device("cpu"), 0, "continuous-dynamics", "dynamics", profile, cfg)
    pipe = ComparePipeline(cfg)
    plan = [j for j in pipe.jobs(ctx, str(data_dir.resolve())) if j.name in ("linear_dynamics", "gru_dynamics")]
    record: dict[str, Any] = {"profile": profile, "jobs": [j.name for j in plan], "threads_per_job": 1}
    # one torch thread per job both ways: the gain measured is that of running two jobs at once
    for label, parallel in (("sequential", 1), ("parallel", 2)):
        jobs = [
            Job(
                j.name,
                "continuous-dynamics",
                out / label / j.name,
                pipeline="train-one",
                profile="full",
                config=j.config,
                group="fast",
            )
            for j in plan
        ]
        t0 = time.perf_counter()
        results = run_jobs(jobs, max_parallel=parallel, threads=parallel, progress=False)
        record[label] = {
            "wall_seconds": time.perf_counter() - t0,
            "jobs": {
                r.name: {"status": r.status, "wall_time": r.wall_time, "mse": r.metrics.get("mse")} for r in results
            },
        }
    record["speedup"] = record["sequential"]["wall_seconds"] / record["parallel"]["wall_seconds"]
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="medium", help="quick, medium or full")
    parser.add_argument("--parts", default="compare,step,parallel")
    parser.add_argument("--out", default=None, help="run directory (default runs/bench-continuous-dynamics-<profile>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra KEY=VALUE overrides")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=60, help="timed steps per model (step part)")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    out = Path(args.out or ROOT / "runs" / f"bench-continuous-dynamics-{args.profile}")
    results_path = Path(args.results)
    record: dict[str, Any] = json.loads(results_path.read_text()) if results_path.is_file() else {}
    record["machine"] = machine_info()
    start = time.perf_counter()
    if "compare" in parts:
        record["compare"] = bench_compare(args.profile, out / "compare", args.overrides, args.threads)
        print_table(
            [{k: v for k, v in r.items() if k not in ("groups", "perm_increase")} for r in record["compare"]["rows"]],
            [
                "name",
                "status",
                "one_step_mse",
                "rollout_mse_h10",
                "rollout_mse_h50",
                "train_seconds",
                "params",
                "best_epoch",
                "epochs_run",
            ],
        )
        print("ablation:", json.dumps(record["compare"]["ablation"]))
        print("targets:", json.dumps(record["compare"]["targets"]))
    if "step" in parts:
        record["step"] = bench_step(args.repeats)
        print(
            "training step (ms, median):",
            {k: record["step"][k]["median_ms"] for k in ("gru_dynamics", "neural_ode")},
            f"ratio {record['step']['ode_over_gru_median']:.2f} (target <= {ODE_STEP_RATIO_MAX})",
        )
    if "parallel" in parts:
        record["parallel"] = bench_parallel(args.profile, out / "parallel", args.overrides)
        print("fast group:", json.dumps({k: v for k, v in record["parallel"].items() if k != "jobs"}, default=str))
    record["bench_seconds_last"] = time.perf_counter() - start
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {results_path} ({record['bench_seconds_last']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
