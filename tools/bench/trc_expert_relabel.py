"""More library restarts on cached nonlinear labels, without solving every problem again.

Loads a data folder written by ``trc_control.py`` (``data/trc_nonlinear/<name>``), runs
:func:`mlcore_trc_control.nonlinear.expert.neighbour_restarts` once more on its labels (the 5
nearest neighbours and mirrors, a library of ``--library`` solutions tried on ``--problems``
problems drawn with ``--seed``), and writes a new folder beside it whose metadata say what was
added (``relabelled``) and how many labels got cheaper. Labels only ever get cheaper and stay on
``x_N = r`` and in the box (the restarts keep a solution only when IPOPT converged and it costs
less). Prints the mean optimum before and after, by initial angle.

    python tools/bench/trc_expert_relabel.py data/trc_nonlinear/pendulum_lib_train \\
        data/trc_nonlinear/pendulum_lib2_train --library 64 --problems 300 --seed 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def relabel(source: Path, target: Path, *, library: int, problems: int, seed: int, neighbours: int) -> dict:
    """Write ``target`` from ``source`` with the restarts' cheaper labels; returns what changed."""
    import numpy as np

    from mlcore_trc_control.data import DATA_FILE, LQRProblemSet
    from mlcore_trc_control.nonlinear.expert import neighbour_restarts

    data = LQRProblemSet.load(source)
    system = data.system
    x0, targets, horizons = data.initial_states, data.target_states, data.horizons()
    converged = data.expert_terminal_errors < 1e-6
    start = time.perf_counter()
    controls, improved = neighbour_restarts(
        system,
        x0,
        targets,
        horizons,
        data.control_sequences,
        converged,
        neighbours=neighbours,
        library=library,
        library_problems=problems,
        seed=seed,
    )
    seconds = time.perf_counter() - start
    states = system.rollout(x0, controls, horizons)
    costs = system.cost(states, controls, targets)
    step = {"library": library, "library_problems": problems, "seed": seed, "neighbours": neighbours}
    meta = dict(data.metadata)
    meta["relabelled"] = [*meta.get("relabelled", []), {"from": str(source), **step, "improved": improved}]
    meta["expert_summary"] = {
        **meta.get("expert_summary", {}),
        "mean_cost": float(costs.mean()),
        "neighbour_improved": int(meta.get("expert_summary", {}).get("neighbour_improved", 0)) + improved,
    }
    meta["generated_seconds"] = round(float(meta.get("generated_seconds", 0.0)) + seconds, 3)
    out = LQRProblemSet(
        system=system,
        initial_states=x0,
        target_states=targets,
        control_sequences=controls,
        state_trajectories=states,
        optimal_costs=costs,
        lqr_control_sequences=data.lqr_control_sequences,
        lqr_costs=data.lqr_costs,
        lqr_terminal_errors=data.lqr_terminal_errors,
        metadata=meta,
        time_horizons=data.time_horizons,
    )
    target.mkdir(parents=True, exist_ok=True)
    out.save(target / DATA_FILE)
    angle = np.abs(x0[:, 0])
    bands = [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5), (2.5, np.inf)]
    return {
        "improved": improved,
        "seconds": seconds,
        "mean_cost": [float(data.optimal_costs.mean()), float(costs.mean())],
        "max_terminal_error": float(np.linalg.norm(states[:, -1] - targets, axis=1).max()),
        "by_angle": [
            {
                "band": [lo, hi],
                "problems": int(sel.sum()),
                "mean_cost": [float(data.optimal_costs[sel].mean()), float(costs[sel].mean())],
            }
            for lo, hi in bands
            if (sel := (angle >= lo) & (angle < hi)).any()
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a cached data folder (or .npz)")
    parser.add_argument("target", type=Path, help="the new folder")
    parser.add_argument("--library", type=int, default=64, help="library size (solutions drawn from the set)")
    parser.add_argument("--problems", type=int, default=0, help="problems the library is tried on (0 = all)")
    parser.add_argument("--neighbours", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1, help="draws the library and its problems")
    args = parser.parse_args(argv)
    if args.target.exists():
        parser.error(f"{args.target} exists: give a new folder")
    done = relabel(
        args.source,
        args.target,
        library=args.library,
        problems=args.problems,
        seed=args.seed,
        neighbours=args.neighbours,
    )
    before, after = done["mean_cost"]
    print(
        f"{args.target}: {done['improved']} labels cheaper in {done['seconds']:.0f} s; "
        f"mean optimum {before:.0f} -> {after:.0f}"
    )
    for row in done["by_angle"]:
        (lo, hi), (old, new) = row["band"], row["mean_cost"]
        print(f"  |theta_0| in [{lo}, {hi}): {row['problems']} problems, {old:.0f} -> {new:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
