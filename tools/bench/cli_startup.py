"""CLI start-up time: `mlcore plugins` / `mlcore list` vs `python -c "import torch"`, in one run.

Target (issue #2): listing commands under 0.3 s with all plugins installed, i.e. no heavy import
on those paths. Usage: python tools/bench/cli_startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from _common import print_table, write_results

TARGET_SECONDS = 0.3


def time_command(argv: list[str], repeats: int) -> dict[str, float]:
    """Median and min wall time of a command over ``repeats`` runs (after one warm-up)."""
    subprocess.run(argv, capture_output=True, check=True)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        samples.append(time.perf_counter() - start)
    return {"median_s": statistics.median(samples), "min_s": min(samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable
    plugins = subprocess.run([py, "-m", "mlcore", "plugins", "--json"], capture_output=True, text=True, check=True)
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import torch'": [py, "-c", "import torch"],
        "mlcore plugins": [py, "-m", "mlcore", "plugins"],
        "mlcore list": [py, "-m", "mlcore", "list"],
        "mlcore list model --json": [py, "-m", "mlcore", "list", "model", "--json"],
        "mlcore --help": [py, "-m", "mlcore", "--help"],
    }
    rows = []
    for name, argv in commands.items():
        t = time_command(argv, args.repeats)
        is_mlcore = name.startswith("mlcore")
        rows.append(
            {
                "command": name,
                "median_s": t["median_s"],
                "min_s": t["min_s"],
                "target_s": TARGET_SECONDS if is_mlcore else None,
                "meets_target": (t["median_s"] < TARGET_SECONDS) if is_mlcore else None,
            }
        )
    print_table(rows)
    import json

    installed = [p["name"] for p in json.loads(plugins.stdout) if p["status"] == "ok"]
    print(f"\nplugins loaded: {', '.join(installed)}")
    write_results("cli_startup", {"repeats": args.repeats, "plugins": installed, "rows": rows})


if __name__ == "__main__":
    main()
