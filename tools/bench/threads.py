"""torch intra-op threads: mlcore's default (``run.threads = 0``) against 1 thread and all CPUs.

Training steps per second (forward, backward, Adam step) of a small and a large MLP, for each
thread count, on an otherwise unchanged machine ("idle") and with ``--load`` CPU-bound busy
processes competing for the cores ("busy": what a shared machine or a second job looks like).
The settings are rotated within each repetition so a change of machine load hits all alike;
the table shows the median over repetitions. The default is :func:`mlcore.runs.default_threads`
as a user gets it (run this without ``OMP_NUM_THREADS``, which the default honours).

Usage: python tools/bench/threads.py [--seconds 1.5] [--repeats 3] [--load 1]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import statistics
import time
from typing import Any

import torch
from _common import print_table, write_results
from torch import nn

from mlcore.runs import available_cpus, default_threads

#: name -> (layer widths, batch size)
MODELS = {
    "small": ([32, 64, 64, 1], 64),  # ~6 k parameters: the per-op overhead regime
    "large": ([512, 2048, 2048, 512], 256),  # ~6.3 M parameters: matmul-bound
}


def _mlp(widths: list[int]) -> nn.Module:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def steps_per_second(widths: list[int], batch: int, threads: int, seconds: float) -> float:
    """Train steps per second with ``threads`` intra-op threads, timed for about ``seconds``."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = _mlp(widths)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, widths[0]), torch.randn(batch, widths[-1])

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    for _ in range(3):  # warm-up
        step()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        step()
        n += 1
    return n / elapsed


def _spin(stop: Any) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.5, help="timing window per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", type=int, default=1, help="busy processes in the 'busy' condition")
    args = parser.parse_args()

    settings = {"default": default_threads(), "1": 1, "all": os.cpu_count() or 1}
    print(
        f"CPUs available: {available_cpus()}, default threads: {settings['default']}, all: {settings['all']}, "
        f"torch's own default: {torch.get_num_threads()}"
    )
    t0 = time.perf_counter()
    rows = []
    for condition in ("idle", "busy"):
        stop = mp.Event()
        spinners = [mp.Process(target=_spin, args=(stop,)) for _ in range(args.load if condition == "busy" else 0)]
        for p in spinners:
            p.start()
        try:
            for model, (widths, batch) in MODELS.items():
                samples: dict[str, list[float]] = {name: [] for name in settings}
                names = list(settings)
                for r in range(args.repeats):
                    for name in names[r % len(names) :] + names[: r % len(names)]:
                        samples[name].append(steps_per_second(widths, batch, settings[name], args.seconds))
                base = statistics.median(samples["1"])
                for name, values in samples.items():
                    med = statistics.median(values)
                    rows.append(
                        {
                            "condition": condition,
                            "model": model,
                            "setting": name,
                            "threads": settings[name],
                            "steps_per_s": med,
                            "vs_1_thread": med / base,
                            "min": min(values),
                            "max": max(values),
                        }
                    )
        finally:
            stop.set()
            for p in spinners:
                p.join()
    wall = time.perf_counter() - t0
    print_table(rows)
    print(f"\n{wall:.0f} s; busy = {args.load} CPU-bound process(es) beside the benchmark")
    write_results(
        "threads",
        {
            "seconds_per_measurement": args.seconds,
            "repeats": args.repeats,
            "busy_processes": args.load,
            "settings": settings,
            "available_cpus": available_cpus(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "wall_seconds": wall,
            "note": "the machine was shared with other jobs while this ran; 'idle' means no extra load added",
            "models": {k: {"widths": w, "batch": b} for k, (w, b) in MODELS.items()},
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
