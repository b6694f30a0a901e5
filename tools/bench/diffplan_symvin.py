"""Benchmark: SymVIN training throughput (hand-written D4 layers) on 15x15 mazes, batch 32, 1 thread.

Times RMSprop training steps (forward, optimal-set loss, backward, step) on generated 15x15
mazes for, in the same run and with the same weights:

- ``symvin``: :class:`mlcore_diffplan_vins.models.symvin.SymVIN` as shipped (kernel expanded once
  per forward, reward term of Q computed once, fused Bellman-max steps with a sparse backward);
- ``symvin-plain``: the textbook loop over the same D4 layers, as the e2cnn reference runs it
  (every step convolves the concatenation ``[r, v]`` with a freshly expanded kernel and takes an
  autograd ``amax``);
- ``vin``: the plain VIN of the plugin with the reference size (K = 10, l_h = 150, l_q = 40).

The issue's reference, the e2cnn SymVIN, ran at ~79 mazes/s on this machine (target >= 3x).
Two rates are printed: ``mazes/s`` (wall clock) and ``mazes/cpu-s`` (per second of this
process's CPU time, which is what a shared machine's load distorts least). It also records the
shipped SymVIN's largest equivariance error over the 8 elements of D4 on real mazes (float32).

    python tools/bench/diffplan_symvin.py                 # 20 timed steps per model
    python tools/bench/diffplan_symvin.py --steps 50 --k 20
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import torch
from _common import print_table, write_results
from torch import Tensor, nn

from mlcore_diffplan_vins.loss import OptimalSetLoss
from mlcore_diffplan_vins.mazes import generate_mazes
from mlcore_diffplan_vins.models import d4
from mlcore_diffplan_vins.models.config import VINConfig
from mlcore_diffplan_vins.models.planner_config import SymVINConfig
from mlcore_diffplan_vins.models.symvin import SymVIN
from mlcore_diffplan_vins.models.vin import VIN

#: The issue's figure for the e2cnn SymVIN on this machine (training, mazes/s, one core).
E2CNN_SYMVIN_MAZES_PER_S = 79.0


class PlainSymVIN(SymVIN):
    """The same network and weights, run the textbook way (what the e2cnn reference does per step)."""

    def forward(self, maps: Tensor) -> Tensor:
        r = self.r(self.h(maps))
        v = torch.zeros_like(r)
        q = self.q(torch.cat([r, v], dim=1))  # GroupConv.forward expands the kernel on every call
        for _ in range(self.config.k):
            v = self.value(q)
            q = self.q(torch.cat([r, v], dim=1))
        return self.policy(q)


def _batch(size: int, batch: int, seed: int) -> tuple[Tensor, Tensor]:
    mazes = generate_mazes(batch, size=size, seed=seed)
    maps = torch.stack([torch.from_numpy(mazes.walls), torch.from_numpy(mazes.goal_maps())], dim=1).float()
    return maps, torch.from_numpy(mazes.optimal_actions).float()


def _time_training(model: nn.Module, maps: Tensor, targets: Tensor, steps: int, warmup: int = 2) -> dict[str, float]:
    loss_fn = OptimalSetLoss()
    optimiser = torch.optim.RMSprop(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = loss_fn(model(maps), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    for _ in range(warmup):
        step()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    mazes = steps * maps.shape[0]
    return {"mazes_per_s": mazes / wall, "mazes_per_cpu_s": mazes / cpu, "ms_per_step": 1000 * wall / steps}


def _equivariance_error(model: nn.Module, maps: Tensor) -> float:
    with torch.no_grad():
        y = model(maps)
        return max(float((model(d4.transform(maps, g)) - d4.transform_actions(y, g)).abs().max()) for g in range(8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=15)
    parser.add_argument("--k", type=int, default=10, help="value-iteration steps (the reference's 10)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="diffplan_symvin", help="results/<name>.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    maps, targets = _batch(args.size, args.batch, seed=0)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()

    config = SymVINConfig(k=args.k)
    symvin = SymVIN(config)
    plain = PlainSymVIN(config)
    plain.load_state_dict(symvin.state_dict())
    vin = VIN(VINConfig(k=args.k, hidden_channels=150, q_channels=40))
    with torch.no_grad():
        same_output = float((symvin(maps) - plain(maps)).abs().max())
    rows: list[dict[str, Any]] = []
    for name, model in (("symvin", symvin), ("symvin-plain", plain), ("vin", vin)):
        rows.append({"model": name, **_time_training(model, maps, targets, args.steps)})
    ours = rows[0]
    for row in rows:
        row["x_e2cnn_ref"] = row["mazes_per_cpu_s"] / E2CNN_SYMVIN_MAZES_PER_S
    error = _equivariance_error(SymVIN(config), _batch(args.size, 8, seed=1)[0])
    elapsed = time.perf_counter() - started

    print(
        f"SymVIN training throughput, {args.size}x{args.size}, batch {args.batch}, K={args.k}, {args.threads} thread(s)"
    )
    print_table(rows, ["model", "mazes_per_s", "mazes_per_cpu_s", "ms_per_step", "x_e2cnn_ref"])
    speedup = ours["mazes_per_cpu_s"] / rows[1]["mazes_per_cpu_s"]
    print(
        f"\nshipped vs plain loop over the same D4 layers (same weights, outputs differ by {same_output:.1e}):"
        f" {speedup:.2f}x"
    )
    print(
        f"vs the e2cnn SymVIN's {E2CNN_SYMVIN_MAZES_PER_S:g} mazes/s: {ours['x_e2cnn_ref']:.2f}x"
        " (cpu-time rate; target >= 3x)"
    )
    print(f"largest equivariance error over D4 on 8 real mazes (float32): {error:.2e} (target < 1e-5)")
    print(f"load average at start {load_before:.2f}; ran {elapsed:.0f} s")
    write_results(
        args.name,
        {
            "setup": {
                "size": args.size,
                "batch": args.batch,
                "k": args.k,
                "threads": args.threads,
                "steps": args.steps,
                "symvin_config": {"hidden_fields": config.hidden_channels, "q_fields": config.q_channels},
                "load_average_at_start": load_before,
                "seconds": elapsed,
            },
            "rows": rows,
            "speedup_vs_plain_loop": speedup,
            "e2cnn_reference_mazes_per_s": E2CNN_SYMVIN_MAZES_PER_S,
            "x_e2cnn_reference": ours["x_e2cnn_ref"],
            "equivariance_error_real_mazes_float32": error,
            "max_output_difference_shipped_vs_plain": same_output,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
