"""DDP speed-up on this machine: the same training on 1 process and on N gloo processes (torchrun).

The trainer fits the kit's toy regression (``--samples`` points, ``--features`` inputs, a
``--hidden``-wide MLP) for ``--epochs`` epochs with the same *global* batch in every setting
(``--batch`` split over the processes) and the torch threads divided between them, so each
setting uses the same cores. Reported: the trainer's own training seconds (``train_seconds`` of
``training_stats.json``, rank 0), the wall time of the whole launch (interpreter and process-group
start-up included), the final validation loss and its relative difference from 1 process. The
1-minute load average before each launch is recorded: on a shared machine the figures move with it.

``--settings`` lists ``<processes>x<threads each>``: the default compares 1 process with 2 threads,
1 process with 1 thread (what one process gets when the other core is busy) and 2 processes with
1 thread each (DDP on the two cores).

Usage: python tools/bench/ddp.py [--settings 1x2 1x1 2x1] [--epochs 5] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from _common import print_table, write_results

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from mlcore.testing.toys import ToyData, ToyDataConfig, ToyNet, ToyNetConfig
    from mlcore.training import Trainer, TrainerConfig

    samples, features, hidden, epochs, batch, threads = map(int, sys.argv[3:9])
    world = int(os.environ.get("WORLD_SIZE", "1"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ToyNet(ToyNetConfig(in_features=features, hidden=hidden))
    data = ToyData(ToyDataConfig(num_samples=samples, in_features=features, val_fraction=0.2))
    cfg = TrainerConfig(epochs=epochs, batch_size=batch // world, lr=1e-3, scheduler="none", trackers=[],
                        callbacks=[], plot=False, progress=False)
    result = Trainer(cfg, device="cpu", seed=0).fit(model, data, torch.nn.MSELoss(), run_dir=sys.argv[1])
    if int(os.environ.get("RANK", "0")) == 0:
        with open(sys.argv[2], "w") as fh:
            json.dump({"val_loss": result.history[-1]["val_loss"],
                       "train_seconds": sum(r["seconds"] for r in result.history)}, fh)
    """
)


def launch(nproc: int, threads: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """One training launch on ``nproc`` processes of ``threads`` threads; timings and final validation loss."""
    script = root / "train.py"
    script.write_text(SCRIPT, encoding="utf-8")
    out = root / f"result{nproc}.json"
    params = [str(v) for v in (args.samples, args.features, args.hidden, args.epochs, args.batch, threads)]
    cmd = [sys.executable, str(script), str(root / f"run{nproc}"), str(out), *params]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *cmd[1:]]
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR")}
    env["OMP_NUM_THREADS"] = str(threads)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{nproc} process(es) failed:\n{proc.stderr[-3000:]}")
    result = json.loads(out.read_text())
    return {
        "setting": f"{nproc}x{threads}",
        "nproc": nproc,
        "threads_each": threads,
        "wall_s": wall,
        "load_before": load,
        **result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["1x2", "1x1", "2x1"], help="<processes>x<threads each>")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256, help="global batch size")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            order = args.settings if rep % 2 == 0 else list(reversed(args.settings))
            for setting in order:
                nproc, threads = (int(v) for v in setting.split("x"))
                root = Path(tmp) / f"rep{rep}-{setting}"
                root.mkdir()
                runs.append({"repeat": rep, **launch(nproc, threads, args, root)})
    rows = []
    for setting in args.settings:
        mine = [r for r in runs if r["setting"] == setting]
        rows.append(
            {
                "nproc": mine[0]["nproc"],
                "threads_each": mine[0]["threads_each"],
                "train_s": statistics.median(r["train_seconds"] for r in mine),
                "wall_s": statistics.median(r["wall_s"] for r in mine),
                "val_loss": statistics.median(r["val_loss"] for r in mine),
                "load_before": statistics.median(r["load_before"] for r in mine),
            }
        )
    base = rows[0]
    for row in rows:
        row["train_speedup"] = base["train_s"] / row["train_s"]
        row["wall_speedup"] = base["wall_s"] / row["wall_s"]
        row["val_loss_diff_pct"] = 100 * abs(row["val_loss"] - base["val_loss"]) / base["val_loss"]
    print_table(rows)
    write_results(
        "ddp",
        {
            "config": {k: getattr(args, k) for k in ("settings", "samples", "features", "hidden", "epochs", "batch")},
            "repeats": args.repeats,
            "rows": rows,
            "runs": runs,
            "bench_seconds": time.perf_counter() - started,
        },
    )


if __name__ == "__main__":
    main()
