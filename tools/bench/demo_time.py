"""Wall time of the README's demo runs: ``mlcore run --plugin trc-control`` and ``--plugin nav-rl``.

The README's Quick start quotes how long its first command's run takes (and the nav-rl line how
long that one takes); this measures exactly those commands — default profile, no overrides — as
separate processes, the way a user starts them, and records the machine's load beside the times
(on a shared 2-core machine the load changes the wall time more than anything else).

    python tools/bench/demo_time.py                          # both, once each
    python tools/bench/demo_time.py --plugins trc-control --repeats 3
    python tools/bench/demo_time.py --plugins nav-rl --fresh-venv   # as a new user: a new venv, pip install, run

With ``--fresh-venv`` each plugin is installed the way the README says — a brand-new venv,
``pip install torch==2.13.0`` (the pin of the hatch environments), then
``pip install ./packages/mlcore ./plugins/<plugin>`` and nothing else — and that venv's ``mlcore``
is timed (the install time is recorded separately). Every run records its wall time, the CPU time
of the ``mlcore`` process (user + system: what the run costs whatever the load), the 1/5/15-minute
load averages before and after and the mean 1-minute load sampled every few seconds during the run.
Only the measured plugins' rows of ``results/demo_time.json`` are replaced; the others are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, machine_info, print_table, write_results

ROOT = Path(__file__).resolve().parents[2]
#: the same pin as the hatch environments (and tools/ci/alone.py)
TORCH = "torch==2.13.0"

#: figures of the run's ``metrics.json`` recorded beside the time (what the demo achieved)
HEADLINE = {"nav-rl": ("success_rate", "train_timesteps", "random_success_rate", "planner_success_rate")}
#: the README's commands (Quick start, first line; and the nav-rl line below it)
COMMANDS = {
    "trc-control": ["run", "--plugin", "trc-control"],
    "nav-rl": ["run", "--plugin", "nav-rl"],
}


def mlcore_executable() -> str:
    """The ``mlcore`` script of this interpreter's environment (else the one on PATH)."""
    beside = Path(sys.executable).parent / "mlcore"
    found = str(beside) if beside.exists() else shutil.which("mlcore")
    if not found:
        raise SystemExit("demo_time: no `mlcore` executable; install the core first")
    return found


def time_run(argv: list[str], env: dict[str, str] | None = None, headline: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run one command in a fresh output directory; wall and CPU seconds, exit code, load, ``headline`` metrics."""
    with tempfile.TemporaryDirectory(prefix="demo-time-") as tmp:
        load_before = list(os.getloadavg())
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples: list[float] = []
        start = time.perf_counter()
        with open(Path(tmp) / "out.txt", "w+", encoding="utf-8") as out:
            proc = subprocess.Popen(
                [*argv, "--out", str(Path(tmp) / "run")], stdout=out, stderr=subprocess.STDOUT, env=env
            )
            while proc.poll() is None:
                samples.append(os.getloadavg()[0])
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            seconds = time.perf_counter() - start
            cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if proc.returncode != 0:
                out.seek(0)
                print(out.read()[-4000:])
        metrics_path = Path(tmp) / "run" / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        stats_path = Path(tmp) / "run" / "training_stats.json"
        stopped = json.loads(stats_path.read_text()).get("stopped_reason") if stats_path.exists() else None
        return {
            "metrics": {k: metrics[k] for k in headline if k in metrics},
            "stopped_reason": stopped,
            "seconds": seconds,
            "cpu_seconds": (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime),
            "returncode": proc.returncode,
            "load_before": load_before,
            "load_after": list(os.getloadavg()),
            "load_1min_mean": statistics.fmean(samples) if samples else load_before[0],
        }


def fresh_venv(plugin: str, work: Path) -> tuple[str, dict[str, str], float]:
    """A new venv with torch, the core and ``plugins/<plugin>`` installed; its ``mlcore``, env, install seconds."""
    venv = work / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "MLCORE_PLUGINS")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    py = str(venv / "bin" / "python")
    start = time.perf_counter()
    for argv in (
        [sys.executable, "-m", "venv", str(venv)],
        [py, "-m", "pip", "install", "-q", TORCH],
        [py, "-m", "pip", "install", "-q", "./packages/mlcore", f"./plugins/{plugin}"],
    ):
        print(f"[demo_time]   $ {' '.join(argv)}", flush=True)
        subprocess.run(argv, cwd=ROOT, env=env, check=True)
    return str(venv / "bin" / "mlcore"), env, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", default=",".join(COMMANDS), help="comma-separated (default: all)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--fresh-venv", action="store_true", help="pip-install core + plugin into a new venv first and time that mlcore"
    )
    args = parser.parse_args(argv)

    rows = []
    for name in [p.strip() for p in args.plugins.split(",") if p.strip()]:
        with tempfile.TemporaryDirectory(prefix=f"demo-venv-{name}-") as work:
            env, install_s = None, None
            if args.fresh_venv:
                exe, env, install_s = fresh_venv(name, Path(work))
            else:
                exe = mlcore_executable()
            command = [exe, *COMMANDS[name]]
            runs = []
            for i in range(args.repeats):
                print(f"[demo_time] mlcore {' '.join(COMMANDS[name])} ({i + 1}/{args.repeats}) ...", flush=True)
                runs.append(time_run(command, env, HEADLINE.get(name, ())))
        ok = all(r["returncode"] == 0 for r in runs)
        seconds = [float(r["seconds"]) for r in runs]
        rows.append(
            {
                "plugin": name,
                "machine": machine_info(),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "repeats": args.repeats,
                "command": "mlcore " + " ".join(COMMANDS[name]),
                "fresh_venv": args.fresh_venv,
                "install_s": install_s,
                "ok": ok,
                "median_s": statistics.median(seconds),
                "min_s": min(seconds),
                "max_s": max(seconds),
                "median_cpu_s": statistics.median(float(r["cpu_seconds"]) for r in runs),
                "runs": runs,
            }
        )
    print_table(rows, ["command", "ok", "median_s", "median_cpu_s", "min_s", "max_s"])
    # keep the rows of the plugins not measured now (each plugin's row is replaced by its own new one)
    old = RESULTS_DIR / "demo_time.json"
    kept = []
    if old.exists():
        measured = {r["plugin"] for r in rows}
        kept = [r for r in json.loads(old.read_text()).get("rows", []) if r.get("plugin") not in measured]
    write_results(
        "demo_time",
        {"repeats": args.repeats, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "rows": [*kept, *rows]},
    )
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
