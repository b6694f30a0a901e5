"""Hyperparameter search at scale (issue 16): pruning, resume after a kill, Ray Tune.

On trc-control's LQR data and TRC model, trained by the core's generic ``train`` pipeline (no
comparison or export stages, so a trial is training + evaluation only), with a tiny config so the
whole benchmark runs in minutes on a 2-core machine:

1. **pruning**: the same seeded Optuna study (TPE, ``--trials`` trials, ``--epochs`` epochs each)
   with the median pruner and without pruning. Reported: epochs spent (target: pruned <= 60 % of
   unpruned) and the best value (target: pruned at least as good).
2. **resume**: a study run by ``mlcore tune`` in a subprocess, killed with SIGKILL once it holds
   ``--kill-after`` complete trials, then run again with the same command. Reported: the trials
   complete before the kill, that none of them ran again (their metrics.json untouched), and the
   final count.
3. **ray**: the same search space on Ray Tune (local instance, ASHA scheduler, Optuna's TPE through
   Ray, 1 CPU per trial). Reported: its best value and epochs.

Usage: python tools/bench/scale.py [--trials 20] [--epochs 10] [--ray-trials 20] [--stages optuna,resume,ray]
Writes tools/bench/results/scale.json; a run of some stages keeps the other stages' figures already there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tomli_w
from _common import print_table, write_results

from mlcore import api

TARGET_EPOCH_SHARE = 0.60


def base_config(epochs: int, trials: int, pruner: str) -> dict[str, Any]:
    """trc-control's LQR data and TRC model, tiny, under the core's train pipeline, with the search."""
    return {
        "run": {"plugin": "mlcore", "pipeline": "train", "seed": 0, "threads": 1},
        "dataset": {"name": "lqr", "num_samples": 256, "test_num_samples": 64},
        "model": {"name": "trc", "size": "small"},
        "loss": {"name": "mse"},
        "trainer": {"epochs": epochs, "batch_size": 64, "plot": False, "trackers": []},
        "search": {
            "metric": "best_metric",  # the best val_loss of the run
            "report": "val_loss",
            "direction": "minimize",
            "trials": trials,
            "sampler": "tpe",
            "pruner": pruner,
            "seed": 0,
            "startup_trials": 5,
            "warmup_epochs": 2,
            "space": {
                "trainer.lr": {"type": "log", "low": 1e-4, "high": 3e-2},
                "trainer.batch_size": {"type": "categorical", "choices": [32, 64, 128]},
                "trainer.scheduler": {"type": "categorical", "choices": ["cosine", "step"]},
                "trainer.step_size": {"type": "int", "low": 2, "high": 6, "when": {"trainer.scheduler": "step"}},
                "trainer.weight_decay": {"type": "float", "low": 0.0, "high": 1e-3},
            },
        },
    }


def summary(name: str, result: Any, seconds: float) -> dict[str, Any]:
    """One row of the table."""
    return {
        "study": name,
        "trials": len(result.trials),
        "complete": result.count("complete"),
        "pruned": result.count("pruned"),
        "failed": result.count("fail"),
        "epochs": result.epochs,
        "best": result.best_value,
        "best_trial": result.best_trial,
        "seconds": round(seconds, 1),
    }


def run_optuna(root: Path, epochs: int, trials: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pruned and the unpruned study."""
    rows = {}
    for name, pruner in (("optuna, median pruner", "median"), ("optuna, no pruning", "none")):
        t0 = time.perf_counter()
        result = api.tune(config=base_config(epochs, trials, pruner), out=root / pruner)
        rows[pruner] = summary(name, result, time.perf_counter() - t0)
        print(f"  {name}: {rows[pruner]}", flush=True)
    return rows["median"], rows["none"]


def _complete(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        try:
            return con.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def run_resume(root: Path, epochs: int, trials: int, kill_after: int) -> dict[str, Any]:
    """A study killed with SIGKILL mid-way, then resumed with the same command."""
    cfg = root / "resume.toml"
    cfg.write_text(tomli_w.dumps(base_config(epochs, trials, "none")), encoding="utf-8")
    out = root / "resume"
    cmd = [sys.executable, "-m", "mlcore", "-q", "tune", "--config", str(cfg), "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = out / "study.db"
    while _complete(db) < kill_after and proc.poll() is None and time.perf_counter() - t0 < 600:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _complete(db)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/metrics.json")}
    running_dirs = sorted(p.name for p in out.glob("trials/*") if not (p / "metrics.json").exists())
    again = subprocess.run(cmd, capture_output=True, text=True)
    after = _complete(db)
    rerun = sorted(str(p.parent.name) for p, s in stamps.items() if p.stat().st_mtime_ns != s)
    return {
        "trials": trials,
        "complete_before_kill": before,
        "killed_mid_trial": running_dirs,
        "complete_after_resume": after,
        "finished_trials_run_again": rerun,
        "resume_exit_code": again.returncode,
        "seconds": round(time.perf_counter() - t0, 1),
        "ok": again.returncode == 0 and after == trials and not rerun and before >= kill_after,
    }


def run_ray(root: Path, epochs: int, trials: int) -> dict[str, Any]:
    """The same search on Ray Tune (local), ASHA + Optuna's TPE through Ray."""
    t0 = time.perf_counter()
    result = api.tune(
        config=base_config(epochs, trials, "median"),
        out=root / "ray",
        engine="ray",
        scheduler="asha",
        searcher="optuna",
        cpus_per_trial=1,
    )
    return summary("ray tune, ASHA + optuna TPE", result, time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--resume-trials", type=int, default=6)
    parser.add_argument("--kill-after", type=int, default=3)
    parser.add_argument("--ray-trials", type=int, default=20)
    parser.add_argument("--stages", default="optuna,resume,ray", help="comma-separated: optuna, resume, ray")
    args = parser.parse_args()
    stages = set(args.stages.split(","))
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()
    previous: dict[str, Any] = {}
    path = Path(__file__).parent / "results" / "scale.json"
    if path.exists() and stages != {"optuna", "resume", "ray"}:
        previous = json.loads(path.read_text(encoding="utf-8"))
    pruned, full = previous.get("optuna_pruned"), previous.get("optuna_unpruned")
    resume, ray = previous.get("resume"), previous.get("ray")
    with tempfile.TemporaryDirectory(prefix="mlcore-scale-") as tmp:
        root = Path(tmp)
        if "optuna" in stages:
            print(f"optuna: {args.trials} trials x {args.epochs} epochs, with and without pruning", flush=True)
            pruned, full = run_optuna(root, args.epochs, args.trials)
        if "resume" in stages:
            print(f"resume: {args.resume_trials} trials, SIGKILL after {args.kill_after}", flush=True)
            resume = run_resume(root, args.epochs, args.resume_trials, args.kill_after)
            print(f"  {resume}", flush=True)
        if "ray" in stages:
            print(f"ray tune: {args.ray_trials} trials", flush=True)
            ray = run_ray(root, args.epochs, args.ray_trials)
            print(f"  {ray}", flush=True)
    assert pruned is not None and full is not None and resume is not None
    share = pruned["epochs"] / full["epochs"]
    checks = {
        "epoch_share": round(share, 3),
        "epoch_share_target": TARGET_EPOCH_SHARE,
        "epoch_share_ok": share <= TARGET_EPOCH_SHARE,
        "pruned_best_at_least_as_good": pruned["best"] <= full["best"],
        "resume_ok": resume["ok"],
    }
    if ray is not None:
        checks["ray_best_vs_optuna_best"] = round(ray["best"] / min(pruned["best"], full["best"]), 3)
    rows = [pruned, full] + ([ray] if ray else [])
    print()
    print_table(rows, ["study", "trials", "complete", "pruned", "failed", "epochs", "best", "seconds"])
    print()
    for key, value in checks.items():
        print(f"{key}: {value}")
    seconds = time.perf_counter() - started
    print(f"total: {seconds:.0f} s")
    stage_seconds = dict(previous.get("stage_seconds", {}))
    stage_seconds[",".join(sorted(stages))] = round(seconds, 1)
    config = dict(previous.get("config", {}))
    config.update(
        {
            "data": "trc-control lqr, double integrator, 256 train / 64 test problems",
            "model": "trc small",
            "space": base_config(args.epochs, args.trials, "median")["search"]["space"],
            "epochs": args.epochs,
        }
    )
    if "optuna" in stages:
        config["trials"] = args.trials
    if "ray" in stages:
        config["ray_trials"] = args.ray_trials
    out = write_results(
        "scale",
        {
            "config": config,
            "optuna_pruned": pruned,
            "optuna_unpruned": full,
            "resume": resume,
            "ray": ray,
            "checks": checks,
            "stage_seconds": stage_seconds,
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
