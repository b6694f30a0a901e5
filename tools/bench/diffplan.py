"""Benchmark: the diffplan-vins grid planners on CPU against the issue's targets.

Two parts, each run in the same process on the same machine:

1. ``throughput`` — VIN training throughput (mazes/s; batch 32, RMSprop, the set loss, K = 10,
   l_h = 150, l_q = 40 as in the reference run) of the plugin's VIN against a plain reference
   implementation of the *same network* written below (``TextbookVIN``: ``h``, ``r``, then K x
   ``conv2d([r, v])`` + ``max``, as the public VIN code writes it). Both get identical weights and
   batches; the rounds alternate so machine load hits both alike, and the median is reported.
   The outputs of the two are checked equal first. With ``--symmetric`` the symmetric planners are
   timed the same way (the e2cnn SymVIN figure, ~79 mazes/s, is quoted from the issue, not measured;
   ``tools/bench/diffplan_symvin.py`` is the D4 layers' own benchmark).
2. ``accuracy`` — the ``compare`` pipeline (research setup: batch 32, RMSprop, lr 1e-3; 10K mazes)
   with a wall-clock budget per model (``--minutes``): %Opt, %Succ and action accuracy on the test
   mazes, the greedy baseline, generalisation to 28×28, epochs completed. Nothing is extrapolated:
   a model that ran out of budget reports what it reached, and the table marks misses.

    python tools/bench/diffplan.py throughput                    # ~1-3 min
    python tools/bench/diffplan.py accuracy --models vin --minutes 20
    python tools/bench/diffplan.py accuracy --models symvin,gppn --minutes 8   # adds to the JSON
    python tools/bench/diffplan.py table                         # print the table from the JSON

3. ``graph`` — the graph planners (MP-VIN, Sym-MP-VIN, GAT-VIN, GCN-VIN-v2) and the greedy
   baseline on 15×15 maze graphs through the ``graph`` pipeline (identical data, one budget per
   model), Sym-MP-VIN's D4 symmetry error measured on the trained model, and the 1-minute load
   average beside every timing. Written under the JSON's own ``graph`` key (merged by model set;
   the grid entries are left alone)::

    python tools/bench/diffplan.py graph --minutes 3 --num 2000
    python tools/bench/diffplan.py graph --models sym-mp-vin --minutes 5   # adds to the JSON
    python tools/bench/diffplan.py graph-table

Results: ``tools/bench/results/diffplan.json`` (each part updates its own entries).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _common import machine_info, print_table

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tools" / "bench" / "results" / "diffplan.json"

#: Original targets (accuracy on 15×15) and published %Succ (symmetric planning, 15×15, 10K mazes).
TARGET_ACCURACY = {"vin": 0.94, "symvin": 0.96, "de-vin": 0.93, "de-symvin": 0.95}
PUBLISHED_SUCC = {"vin": 0.670, "symvin": 0.990, "gppn": 0.964, "convgppn": 0.998, "symgppn": 0.9998}
REFERENCE_VIN_SUCC = 0.714  # the public reference VIN on this machine, K = 10, l_q = 40, 99 epochs (issue 14)
E2CNN_SYMVIN_MAZES_PER_S = 79.0  # quoted from issue 14 (e2cnn does not install with numpy 2: not measured here)


def load() -> dict[str, Any]:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def save(payload: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    tmp.replace(RESULTS)


# --------------------------------------------------------------------------- throughput


def textbook_vin(vin: Any) -> Any:
    """The plain reference: the same parameters as ``vin``, computed the usual way."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class TextbookVIN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            k = vin.config
            self.k = k.k
            self.h = nn.Conv2d(2, k.hidden_channels, 3, padding=1, bias=True)
            self.r = nn.Conv2d(k.hidden_channels, 1, 1, bias=False)
            self.q = nn.Conv2d(1, k.q_channels, 3, padding=1, bias=False)
            self.w = nn.Parameter(torch.zeros(k.q_channels, 1, 3, 3))
            self.fc = nn.Conv2d(k.q_channels, k.num_actions, 1, bias=False)
            with torch.no_grad():
                self.h.weight.copy_(vin.h.weight)
                self.h.bias.copy_(vin.h.bias)
                self.r.weight.copy_(vin.r.weight)
                self.q.weight.copy_(vin.q_r.weight)
                self.w.copy_(vin.q_v.weight)
                self.fc.weight.copy_(vin.policy.weight)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            r = self.r(self.h(x))
            q = self.q(r)
            v, _ = torch.max(q, dim=1, keepdim=True)
            for _ in range(self.k - 1):
                q = F.conv2d(torch.cat([r, v], 1), torch.cat([self.q.weight, self.w], 1), stride=1, padding=1)
                v, _ = torch.max(q, dim=1, keepdim=True)
            q = F.conv2d(torch.cat([r, v], 1), torch.cat([self.q.weight, self.w], 1), stride=1, padding=1)
            return self.fc(q)

    return TextbookVIN()


def time_training(
    models: dict[str, Any],
    maps: Any,
    targets: Any,
    steps: int,
    rounds: int,
    per_cpu_second: dict[str, float] | None = None,
) -> dict[str, float]:
    """Median mazes/s of ``steps`` training steps (batch 32) per round, rounds alternating between models.

    ``per_cpu_second`` (if given) receives the median mazes per second of this process's CPU time,
    which other jobs on a shared machine disturb less than the wall clock.
    """
    import torch

    from mlcore_diffplan_vins.loss import OptimalSetLoss

    loss = OptimalSetLoss()
    optims = {n: torch.optim.RMSprop(m.parameters(), lr=1e-3) for n, m in models.items()}
    speeds: dict[str, list[float]] = {n: [] for n in models}
    cpu: dict[str, list[float]] = {n: [] for n in models}
    batches = [(maps[i : i + 32], targets[i : i + 32]) for i in range(0, len(maps) - 31, 32)]
    for rnd in range(rounds + 1):
        for name, model in models.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for s in range(steps):
                x, y = batches[(rnd * steps + s) % len(batches)]
                optims[name].zero_grad(set_to_none=True)
                loss(model(x), y).backward()
                optims[name].step()
            if rnd:  # round 0 warms up
                speeds[name].append(steps * 32 / (time.perf_counter() - start))
                cpu[name].append(steps * 32 / max(time.process_time() - start_cpu, 1e-9))
    if per_cpu_second is not None:
        per_cpu_second.update({n: statistics.median(v) for n, v in cpu.items()})
    return {n: statistics.median(v) for n, v in speeds.items()}


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from mlcore.registry import get_registry
    from mlcore_diffplan_vins.data import maze_tensors
    from mlcore_diffplan_vins.mazes import generate_mazes
    from mlcore_diffplan_vins.models.config import VINConfig
    from mlcore_diffplan_vins.models.vin import VIN

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    maps, targets = maze_tensors(generate_mazes(32 * 8, 15, 4, seed=123))
    vin = VIN(VINConfig(k=10, hidden_channels=150, q_channels=40))
    ref = textbook_vin(vin)
    with torch.no_grad():
        diff = float((vin(maps[:32]) - ref(maps[:32])).abs().max())
    out: dict[str, Any] = {"max_abs_output_diff": diff, "config": {"k": 10, "hidden_channels": 150, "q_channels": 40}}
    per_cpu: dict[str, float] = {}
    speeds = time_training({"vin": vin, "textbook_vin": ref}, maps, targets, args.steps, args.rounds, per_cpu)
    out["mazes_per_second"] = speeds
    out["mazes_per_cpu_second"] = per_cpu
    out["speedup"] = speeds["vin"] / speeds["textbook_vin"]
    out["speedup_cpu_time"] = per_cpu["vin"] / per_cpu["textbook_vin"]
    out["load_average_1min"] = os.getloadavg()[0]
    if not args.symmetric:
        return out
    reg = get_registry()
    sym = {}
    for name in ("symvin", "symgppn", "de-symvin"):
        try:
            spec = reg.get("model", name)
        except Exception:
            continue
        cls = spec.config_class()
        changes = {"k": 10, "q_channels": 40} if name == "symvin" else {}
        fields = {a.name for a in getattr(cls, "__attrs_attrs__", ())}
        cfg = cls(**{k: v for k, v in changes.items() if k in fields}) if cls is not None else None
        sym[name] = time_training({name: spec.build(cfg)}, maps, targets, max(2, args.steps // 4), args.rounds)[name]
    if sym:
        out["symmetric_mazes_per_second"] = sym
        out["e2cnn_symvin_mazes_per_second_quoted"] = E2CNN_SYMVIN_MAZES_PER_S
        if "symvin" in sym:
            out["symvin_vs_e2cnn"] = sym["symvin"] / E2CNN_SYMVIN_MAZES_PER_S
    return out


# --------------------------------------------------------------------------- accuracy


def accuracy(args: argparse.Namespace) -> dict[str, Any]:
    from mlcore.api import run

    overrides = [
        f"models={json.dumps(args.models.split(','))}",
        f"dataset.num={args.num}",
        f"trainer.epochs={args.epochs}",
        f"trainer.max_time_minutes={args.minutes}",
        "trainer.progress=false",
        f"generalisation.sizes={json.dumps([int(s) for s in args.gen_sizes.split(',') if s])}",
        f"generalisation.num={args.gen_num}",
        *args.overrides,
    ]
    out_dir = Path(args.out or ROOT / "runs" / f"bench-diffplan-{args.models.replace(',', '-')}")
    if args.record_only:  # a finished run of this command: read its results instead of training again
        results = json.loads((out_dir / "results.json").read_text())
        summary = json.loads((out_dir / "summary.json").read_text())
        return {
            "run_dir": str(out_dir),
            "wall_seconds": summary.get("seconds", summary.get("wall_seconds")),
            "overrides": overrides,
            "seed": args.seed,
            "dataset": results["dataset"],
            "models": results["models"],
        }
    start = time.perf_counter()
    result = run(
        "diffplan-vins",
        pipeline="compare",
        profile="full",
        overrides=overrides,
        out=out_dir,
        seed=args.seed,
        threads=args.threads,
        progress=False,
    )
    wall = time.perf_counter() - start
    results = json.loads((Path(result.out_dir) / "results.json").read_text())
    return {
        "run_dir": str(result.out_dir),
        "wall_seconds": wall,
        "overrides": overrides,
        "seed": args.seed,
        "dataset": results["dataset"],
        "models": results["models"],
    }


# --------------------------------------------------------------------------- graph planners

#: The issue's targets on 15×15 maze graphs (%Opt and %Succ).
GRAPH_TARGETS = {"mp-vin": 0.91, "sym-mp-vin": 0.93, "gat-vin": 0.90, "gcn-vin-v2": 0.89}
SYMMETRY_TARGET = 1e-5


def graph_accuracy(args: argparse.Namespace) -> dict[str, Any]:
    """Run the ``graph`` pipeline with a budget per model; add the D4 error of the trained Sym-MP-VIN."""
    from mlcore.api import run

    overrides = [
        f"models={json.dumps(args.models.split(','))}",
        f"dataset.size={args.size}",
        f"dataset.num={args.num}",
        f"trainer.epochs={args.epochs}",
        f"trainer.max_time_minutes={args.minutes}",
        "trainer.progress=false",
        *args.overrides,
    ]
    out_dir = Path(args.out or ROOT / "runs" / f"bench-diffplan-graph-{args.models.replace(',', '-')}")
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    result = run(
        "diffplan-vins",
        pipeline="graph",
        profile="full",
        overrides=overrides,
        out=out_dir,
        seed=args.seed,
        threads=args.threads,
        progress=False,
    )
    wall = time.perf_counter() - start
    results = json.loads((Path(result.out_dir) / "results.json").read_text())
    entry = {
        "run_dir": str(result.out_dir),
        "wall_seconds": wall,
        "load_average_1min_start": load_before,
        "load_average_1min_end": os.getloadavg()[0],
        "overrides": overrides,
        "seed": args.seed,
        "dataset": results["dataset"],
        "models": results["models"],
    }
    if "sym-mp-vin" in results["models"]:
        entry["models"]["sym-mp-vin"]["symmetry_error"] = symmetry_error(Path(result.out_dir), results["dataset"])
    return entry


def symmetry_error(run_dir: Path, dataset: dict[str, Any]) -> float:
    """The D4 error of the trained Sym-MP-VIN on 8 test graphs (max abs deviation of logits and values)."""
    from mlcore.training.checkpoint import build_model
    from mlcore_diffplan_vins.graphs.data import collate_graphs, graph_items
    from mlcore_diffplan_vins.graphs.symmetry import d4_symmetry_error

    model = build_model(run_dir / "models" / "sym-mp-vin" / "checkpoints" / "best.pt", expect="sym-mp-vin")
    from mlcore_diffplan_vins.graphs.build import maze_graphs
    from mlcore_diffplan_vins.mazes import generate_mazes

    graphs = maze_graphs(generate_mazes(8, dataset["size"], dataset.get("actions", 4), seed=dataset["seed"] + 7))
    continuous = bool(dataset.get("continuous", False))
    batch, _ = collate_graphs(graph_items(graphs, continuous))
    return d4_symmetry_error(model, batch, continuous=continuous)


def graph_table(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per graph model (the latest run holding it), with the targets' verdicts."""
    runs = payload.get("graph", {})
    names = sorted(
        {m for r in runs.values() for m in r["models"]},
        key=lambda n: (n in ("greedy", "optimal"), list(GRAPH_TARGETS).index(n) if n in GRAPH_TARGETS else 0, n),
    )
    rows = []
    for name in names:
        entry = [r for r in runs.values() if name in r["models"]][-1]
        m = entry["models"][name]
        target = GRAPH_TARGETS.get(name)
        verdicts = []
        if target is not None:
            met = m["opt"] > target and m["succ"] > target
            verdicts.append(f"%Opt/%Succ>{target:.0%}: {'met' if met else 'MISS'}")
        if "symmetry_error" in m:
            ok = m["symmetry_error"] < SYMMETRY_TARGET
            verdicts.append(f"sym err {m['symmetry_error']:.1e} (<1e-5: {'met' if ok else 'MISS'})")
        rows.append(
            {
                "model": name,
                "params": m.get("params", "-"),
                "epochs": m.get("epochs", "-"),
                "train_s": round(m["train_seconds"]) if "train_seconds" in m else "-",
                "%Opt": f"{100 * m['opt']:.1f}",
                "%Succ": f"{100 * m['succ']:.1f}",
                "acc": f"{100 * m['action_accuracy']:.1f}",
                "load": f"{entry.get('load_average_1min_start', float('nan')):.1f}",
                "targets": "; ".join(verdicts) or "-",
            }
        )
    return rows


# --------------------------------------------------------------------------- table


def table(payload: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    runs = payload.get("accuracy", {})
    for name in sorted({m for r in runs.values() for m in r["models"]}, key=lambda n: (n == "greedy", n)):
        entry = next(r for r in runs.values() if name in r["models"])
        m = entry["models"][name]
        acc_target = TARGET_ACCURACY.get(name)
        succ_target = PUBLISHED_SUCC.get(name)
        verdicts = []
        if acc_target is not None:
            verdicts.append(f"acc>{acc_target:.0%}: {'met' if m['action_accuracy'] > acc_target else 'MISS'}")
        if succ_target is not None:
            verdicts.append(f"succ>{succ_target:.1%}: {'met' if m['succ'] > succ_target else 'MISS'}")
        rows.append(
            {
                "model": name,
                "epochs": m.get("epochs", "-"),
                "train_s": round(m["train_seconds"]) if "train_seconds" in m else "-",
                "%Opt": f"{100 * m['opt']:.1f}",
                "%Succ": f"{100 * m['succ']:.1f}",
                "acc": f"{100 * m['action_accuracy']:.1f}",
                "28x28 %Succ": f"{100 * m['gen28']['succ']:.1f}" if "gen28" in m else "-",
                "targets": "; ".join(verdicts) or "-",
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--steps", type=int, default=8, help="training steps per round")
    t.add_argument("--rounds", type=int, default=5)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--symmetric", action="store_true", help="also time the symmetric planners (default configs; slow)")
    a = sub.add_parser("accuracy")
    a.add_argument("--models", default="vin")
    a.add_argument("--num", type=int, default=10000)
    a.add_argument("--epochs", type=int, default=100)
    a.add_argument("--minutes", type=float, default=10.0, help="wall-clock training budget per model")
    a.add_argument("--gen-sizes", default="28")
    a.add_argument("--gen-num", type=int, default=100)
    a.add_argument("--seed", type=int, default=42)
    a.add_argument("--threads", type=int, default=1)
    a.add_argument("--out", default=None)
    a.add_argument("--set", dest="overrides", action="append", default=[])
    a.add_argument("--record-only", action="store_true", help="record the finished run in --out (or the default dir)")
    sub.add_parser("table")
    gr = sub.add_parser("graph", help="the graph planners on 15x15 maze graphs (own JSON key 'graph')")
    gr.add_argument("--models", default="mp-vin,sym-mp-vin,gat-vin,gcn-vin-v2")
    gr.add_argument("--size", type=int, default=15)
    gr.add_argument("--num", type=int, default=2000)
    gr.add_argument("--epochs", type=int, default=100)
    gr.add_argument("--minutes", type=float, default=3.0, help="wall-clock training budget per model")
    gr.add_argument("--seed", type=int, default=42)
    gr.add_argument("--threads", type=int, default=1)
    gr.add_argument("--out", default=None)
    gr.add_argument("--set", dest="overrides", action="append", default=[])
    sub.add_parser("graph-table")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "tools" / "bench"))
    payload = load()
    payload["machine"] = machine_info()
    if args.part == "throughput":
        start = time.perf_counter()
        payload["throughput"] = throughput(args)
        payload["throughput"]["bench_seconds"] = time.perf_counter() - start
        payload["throughput"]["machine"] = machine_info()
        tp = payload["throughput"]
        print_table(
            [
                {
                    "implementation": n,
                    "mazes/s": f"{v:.0f}",
                    "mazes/CPU-s": f"{tp['mazes_per_cpu_second'].get(n, 0):.0f}",
                }
                for n, v in {**tp["mazes_per_second"], **tp.get("symmetric_mazes_per_second", {})}.items()
            ]
        )
        print(
            f"VIN speed-up over the textbook implementation: {tp['speedup']:.2f}x wall clock, "
            f"{tp['speedup_cpu_time']:.2f}x per CPU second (target >= 3x; load average {tp['load_average_1min']:.1f})"
        )
    elif args.part == "accuracy":
        entry = accuracy(args)
        entry["machine"] = machine_info()
        payload.setdefault("accuracy", {})[args.models] = entry
    elif args.part == "graph":
        entry = graph_accuracy(args)
        entry["machine"] = machine_info()
        payload = load()  # re-read: another part may have written meanwhile; only the 'graph' key changes
        payload.setdefault("graph", {})[args.models] = entry
    if args.part != "graph-table":
        save(payload)
    if args.part in ("accuracy", "table"):
        print_table(table(payload))
    if args.part in ("graph", "graph-table"):
        print_table(graph_table(payload))
    print(f"results: {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
