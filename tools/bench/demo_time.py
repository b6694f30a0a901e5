"""Wall time of the README's demo runs: ``mlcore run --plugin trc-control`` and ``--plugin nav-rl``.

The README's Quick start quotes how long its first command's run takes (and the nav-rl line how
long that one takes); this measures exactly those commands — default profile, no overrides — as
separate processes, the way a user starts them, and records the machine's load beside the times
(on a shared 2-core machine the load changes the wall time more than anything else).

    python tools/bench/demo_time.py                          # both, once each
    python tools/bench/demo_time.py --plugins trc-control --repeats 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_info, print_table, write_results

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


def time_run(argv: list[str]) -> dict[str, float | int | list[float]]:
    """Run one command in a fresh output directory; wall seconds, exit code and load averages."""
    with tempfile.TemporaryDirectory(prefix="demo-time-") as tmp:
        load_before = list(os.getloadavg())
        start = time.perf_counter()
        done = subprocess.run([*argv, "--out", str(Path(tmp) / "run")], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
        return {
            "seconds": seconds,
            "returncode": done.returncode,
            "load_before": load_before,
            "load_after": list(os.getloadavg()),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", default=",".join(COMMANDS), help="comma-separated (default: all)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)

    exe = mlcore_executable()
    rows = []
    for name in [p.strip() for p in args.plugins.split(",") if p.strip()]:
        command = [exe, *COMMANDS[name]]
        runs = []
        for i in range(args.repeats):
            print(f"[demo_time] mlcore {' '.join(COMMANDS[name])} ({i + 1}/{args.repeats}) ...", flush=True)
            runs.append(time_run(command))
        ok = all(r["returncode"] == 0 for r in runs)
        seconds = [float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
        rows.append(
            {
                "plugin": name,
                "machine": machine_info(),
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "repeats": args.repeats,
                "command": "mlcore " + " ".join(COMMANDS[name]),
                "ok": ok,
                "median_s": statistics.median(seconds),
                "min_s": min(seconds),
                "max_s": max(seconds),
                "runs": runs,
            }
        )
    print_table(rows, ["command", "ok", "median_s", "min_s", "max_s"])
    write_results(
        "demo_time", {"repeats": args.repeats, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "rows": rows}
    )
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
