"""Benchmark: is the nonlinear multiple-shooting expert globally optimal? A neighbour re-solve check.

For each selected problem of a cached data set (``data/trc_nonlinear/<system>_<split>``), IPOPT
re-solves the terminal-constrained problem (the expert's own ``ShootingSolver``) from the expert
controls of its ``--neighbours`` nearest problems (scaled ``[x_0, r, T]``) and, with ``--mirror``
(odd-symmetric systems such as the pendulum: ``f(-x, -u) = -f(x, u)``), from their negatives
(with ``--library N`` also from ``N`` problems' controls drawn from the whole set, and theirs); a
problem counts as improvable when a converged solution is cheaper than its label by more than
0.1 %. The stored labels are not changed. Prints a summary and writes
``nonlinear_expert_neighbours.<system>_<split>`` of ``tools/bench/results/trc_control.json``.

    python tools/bench/trc_expert_neighbours.py --system pendulum --split train --min-abs-angle 2.3 --mirror
    python tools/bench/trc_expert_neighbours.py --system pendulum --split test --first 40 --mirror
    python tools/bench/trc_expert_neighbours.py --system pendulum --split test --first 40 --mirror --data-suffix _nb
    python tools/bench/trc_expert_neighbours.py --system pendulum --split test --first 40 --mirror --data-suffix _nb \\
        --library 16 --suffix _library16
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import machine_info
from trc_control import DATA, RESULTS, _load, _merge


def check(path: Path, *, first: int, min_abs_angle: float, neighbours: int, mirror: bool, library: int = 0) -> dict:
    """The neighbour re-solve check of one data set (see the module docstring)."""
    import numpy as np

    from mlcore_trc_control.data import LQRProblemSet
    from mlcore_trc_control.nonlinear.expert import ShootingSolver, problem_cost

    problems = LQRProblemSet.load(path)
    system = problems.system
    x0, targets, horizons = problems.initial_states, problems.target_states, problems.horizons()
    labels, costs = problems.control_sequences, problems.optimal_costs
    keys = np.concatenate([x0, targets, horizons[:, None]], axis=1)
    scale = np.where(keys.std(axis=0) > 1e-9, keys.std(axis=0), 1.0)
    chosen = np.arange(min(first, len(problems))) if first > 0 else np.arange(len(problems))
    if min_abs_angle > 0:
        chosen = chosen[np.abs(x0[chosen, 0]) > min_abs_angle]
    solver = ShootingSolver(system)
    # a library of solutions from anywhere in the set (seeded draw), tried from every problem
    shelf = np.random.default_rng(0).choice(len(problems), min(library, len(problems)), replace=False)
    rows = []
    for i in chosen:
        dist = np.linalg.norm((keys - keys[i]) / scale, axis=1)
        dist[i] = np.inf
        near = np.argsort(dist)[:neighbours]
        near = np.concatenate([near, shelf[shelf != i]])
        guesses = [*labels[near], *(-labels[near] if mirror else [])]
        best = float(costs[i])
        dt = float(horizons[i]) / system.num_steps
        for guess in guesses:
            u, ok = solver.solve(x0[i], targets[i], dt, guess)
            if ok:
                best = min(best, problem_cost(system, x0[i], targets[i], horizons[i], u))
        rows.append({"index": int(i), "x0": x0[i].tolist(), "label_cost": float(costs[i]), "best_cost": best})
    improvable = [r for r in rows if r["best_cost"] < r["label_cost"] * (1 - 1e-3)]
    savings = [1 - r["best_cost"] / r["label_cost"] for r in improvable]
    label_mean = float(np.mean([r["label_cost"] for r in rows])) if rows else float("nan")
    best_mean = float(np.mean([r["best_cost"] for r in rows])) if rows else float("nan")
    return {
        "data": str(path),
        "system": system.name,
        "problems_checked": len(rows),
        "selection": {"first": first, "min_abs_angle": min_abs_angle},
        "neighbours": neighbours,
        "library": library,
        "mirror": mirror,
        "improvable": len(improvable),
        "median_saving": float(np.median(savings)) if savings else 0.0,
        "max_saving": float(max(savings)) if savings else 0.0,
        "mean_label_cost": label_mean,
        "mean_best_cost": best_mean,
        "rows": improvable,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="pendulum")
    parser.add_argument("--split", default="train", choices=("train", "test"))
    parser.add_argument("--first", type=int, default=0, help="only the first N problems (0 = all)")
    parser.add_argument("--min-abs-angle", type=float, default=0.0, help="only problems with |x0[0]| above this")
    parser.add_argument("--neighbours", type=int, default=5)
    parser.add_argument("--mirror", action="store_true", help="also start from the neighbours' negated controls")
    parser.add_argument(
        "--library", type=int, default=0, help="also start from N problems' controls drawn from the whole set (seed 0)"
    )
    parser.add_argument("--suffix", default="", help="write under nonlinear_expert_neighbours.<system>_<split><suffix>")
    parser.add_argument(
        "--data-suffix", default="", help="the data set data/trc_nonlinear/<system><suffix>_<split> (as trc_control.py)"
    )
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    path = DATA / f"{args.system}{args.data_suffix}_{args.split}"
    if not path.exists():
        print(
            f"error: {path}: no cached data set (run trc_control.py --nonlinear {args.system} first)", file=sys.stderr
        )
        return 2
    load_before = _load()
    start = time.perf_counter()
    found = check(
        path,
        first=args.first,
        min_abs_angle=args.min_abs_angle,
        neighbours=args.neighbours,
        mirror=args.mirror,
        library=args.library,
    )
    found.update(
        machine=machine_info(),
        time=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        load_average_1min={"before": load_before, "after": _load()},
        wall_seconds=time.perf_counter() - start,
    )
    print(
        f"{found['problems_checked']} problems checked; {found['improvable']} have a cheaper x_N = r solution "
        f"(median {100 * found['median_saving']:.1f} %, max {100 * found['max_saving']:.1f} % cheaper); "
        f"mean cost {found['mean_label_cost']:.5g} (labels) -> {found['mean_best_cost']:.5g} (best found)"
    )
    _merge(
        Path(args.results),
        "nonlinear_expert_neighbours",
        found,
        subkey=f"{args.system}{args.data_suffix}_{args.split}{args.suffix}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
