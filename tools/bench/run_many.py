"""Wall time of two training runs one after the other against both at once (``mlcore.parallel.run_jobs``).

Two trc-control runs (seeds 0 and 1, a small config) are run with ``max_parallel=1`` (each job
gets all ``--threads``) and with ``max_parallel=2`` (each gets half), ``--repeats`` times,
alternating the order. Every run starts from an empty directory, so both modes do the same work:
process start-up, data generation, training, evaluation, report. The machine's 1-minute load
average is recorded before each measurement: on a shared machine the figures move with it.

Usage: python tools/bench/run_many.py [--threads 2] [--repeats 1] [--epochs 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import print_table, write_results

from mlcore.parallel import Job, run_jobs

#: A small trc-control run: ~10-20 s of training per job on an idle core.
OVERRIDES = [
    "dataset.num_samples=1000",
    "dataset.test_num_samples=200",
    "comparison.generalisation_samples=32",
    "comparison.sweep_cycles=[1,3]",
    "evaluation.timing_problems=10",
]


def measure(max_parallel: int, threads: int, epochs: int, root: Path) -> dict[str, Any]:
    """Run the two jobs with ``max_parallel``; wall time of the whole and of each job."""
    jobs = [
        Job(f"seed{seed}", "trc-control", root / f"p{max_parallel}-seed{seed}",
            overrides=(*OVERRIDES, f"trainer.epochs={epochs}", f"run.seed={seed}"))
        for seed in (0, 1)
    ]  # fmt: skip
    load = os.getloadavg()[0]
    start = time.perf_counter()
    results = run_jobs(jobs, max_parallel=max_parallel, threads=threads, progress=False)
    wall = time.perf_counter() - start
    bad = [r for r in results if r.status != "completed"]
    if bad:
        raise SystemExit(f"job {bad[0].name} {bad[0].status}: {bad[0].error}")
    return {
        "max_parallel": max_parallel,
        "threads_per_job": max(1, threads // max_parallel),
        "wall_s": wall,
        "job_wall_s": [r.wall_time for r in results],
        "load_before": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="threads shared by the running jobs")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            order = (1, 2) if rep % 2 == 0 else (2, 1)
            for mp in order:
                root = Path(tmp) / f"rep{rep}"
                runs.append({"repeat": rep, **measure(mp, args.threads, args.epochs, root)})
    rows = []
    for mp in (1, 2):
        mine = [r for r in runs if r["max_parallel"] == mp]
        rows.append(
            {
                "mode": "sequential" if mp == 1 else "parallel",
                "max_parallel": mp,
                "threads_per_job": mine[0]["threads_per_job"],
                "wall_s": statistics.median(r["wall_s"] for r in mine),
                "mean_job_s": statistics.median(statistics.mean(r["job_wall_s"]) for r in mine),
                "load_before": statistics.median(r["load_before"] for r in mine),
            }
        )
    gain = rows[0]["wall_s"] / rows[1]["wall_s"]
    print_table(rows)
    print(f"\nparallel / sequential wall time: {1 / gain:.2f} (speed-up {gain:.2f}x)")
    write_results(
        "run_many",
        {
            "plugin": "trc-control",
            "overrides": OVERRIDES,
            "epochs": args.epochs,
            "threads": args.threads,
            "repeats": args.repeats,
            "rows": rows,
            "runs": runs,
            "speedup": gain,
            "bench_seconds": time.perf_counter() - started,
        },
    )


if __name__ == "__main__":
    main()
