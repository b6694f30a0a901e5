"""More library restarts on cached nonlinear labels, without solving every problem again.

Loads a data folder written by ``trc_control.py`` (``data/trc_nonlinear/<name>``), runs
:func:`mlcore_trc_control.nonlinear.expert.neighbour_restarts` once more on its labels (the 5
nearest neighbours and mirrors, a library of ``--library`` solutions tried on ``--problems``
problems drawn with ``--seed``, or on the labels costing more than ``--problems-above``), and
writes a new folder beside it whose metadata say what was added (``relabelled``) and how many
labels got cheaper. Labels only ever get cheaper and stay on
``x_N = r`` and in the box (the restarts keep a solution only when IPOPT converged and it costs
less). Prints the mean optimum before and after, overall, on the first ``--first`` problems (the
closed-loop section's) and by initial angle, with the count of labels above ``--costly`` (for the
pendulum: swing-ups on the costly route), and writes that comparison, measured from the two
folders, under ``nonlinear_expert_relabel.<target folder name>`` of
``tools/bench/results/trc_control.json``. ``--record-only`` measures two folders that exist.

    python tools/bench/trc_expert_relabel.py data/trc_nonlinear/pendulum_lib_train \\
        data/trc_nonlinear/pendulum_lib2_train --library 64 --problems 300 --seed 1
    python tools/bench/trc_expert_relabel.py data/trc_nonlinear/pendulum_lib2_train \\
        data/trc_nonlinear/pendulum_lib3_train --library 64 --problems-above 30000 --seed 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import machine_info
from trc_control import RESULTS, _load, _merge


def relabel(
    source: Path,
    target: Path,
    *,
    library: int,
    problems: int,
    seed: int,
    neighbours: int,
    above: float = 0.0,
) -> int:
    """Write ``target`` from ``source`` with the restarts' cheaper labels; returns how many got cheaper.
    ``above > 0`` tries the library on the problems whose label costs more than ``above`` (instead of
    ``problems`` drawn at random)."""
    import attrs

    from mlcore_trc_control.data import DATA_FILE, LQRProblemSet
    from mlcore_trc_control.nonlinear.expert import _solution, neighbour_restarts

    data = LQRProblemSet.load(source)
    system = data.system
    x0, targets, horizons = data.initial_states, data.target_states, data.horizons()
    converged = data.expert_terminal_errors < 1e-6
    probed: int | list[int] = problems
    if above > 0:
        probed = [int(i) for i in (data.optimal_costs > above).nonzero()[0]]
        print(f"{source}: the library is tried on the {len(probed)} labels costing more than {above:g}", flush=True)
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
        library_problems=probed,
        seed=seed,
    )
    seconds = time.perf_counter() - start
    meta = dict(data.metadata)
    step = {"library": library, "library_problems": problems, "seed": seed, "neighbours": neighbours}
    if above > 0:
        step.update(library_problems=len(probed), library_above=above)
    done = {"from": str(source), **step, "improved": improved, "seconds": round(seconds, 1)}
    meta["relabelled"] = [*meta.get("relabelled", []), done]
    # the new labels' rollout, costs and summary; per-problem solver outcomes are not stored, and only
    # converged labels were replaced by converged ones, so the outcome counts carry over
    before = meta.get("expert_summary", {})
    labels = _solution(system, str(before.get("expert", "multiple_shooting")), x0, targets, horizons, controls, [], 0.0)
    meta["expert_summary"] = {
        **labels.summary(float(meta.get("success_threshold", 0.1))),
        "status_counts": before.get("status_counts", {}),
        "neighbour_improved": int(before.get("neighbour_improved", 0)) + improved,
        "seconds": float(before.get("seconds", 0.0)) + seconds,
    }
    meta["generated_seconds"] = round(float(meta.get("generated_seconds", 0.0)) + seconds, 3)
    out = attrs.evolve(
        data,
        control_sequences=controls,
        state_trajectories=labels.states,
        optimal_costs=labels.costs,
        metadata=meta,
    )
    target.mkdir(parents=True, exist_ok=True)
    out.save(target / DATA_FILE)
    return improved


def compare(source: Path, target: Path, *, first: int = 40, costly: float = 30000.0) -> dict:
    """The labels of ``source`` and ``target`` (the same problems) side by side: mean optimum overall,
    on the first ``first`` problems and by initial angle, labels above ``costly``, labels changed."""
    import numpy as np

    from mlcore_trc_control.data import LQRProblemSet

    old, new = LQRProblemSet.load(source), LQRProblemSet.load(target)
    if not np.array_equal(old.initial_states, new.initial_states):
        raise SystemExit(f"error: {source} and {target} do not hold the same problems")
    errors = new.expert_terminal_errors
    angle = np.abs(new.initial_states[:, 0])

    def side(costs: np.ndarray, sel: np.ndarray) -> dict:
        return {"mean_cost": float(costs[sel].mean()), "above_costly": int(np.sum(costs[sel] > costly))}

    def both(sel: np.ndarray) -> dict:
        return {
            "problems": int(sel.sum()),
            "before": side(old.optimal_costs, sel),
            "after": side(new.optimal_costs, sel),
        }

    every = np.ones(len(new), dtype=bool)
    bands = [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5), (2.5, float("inf"))]
    return {
        "source": str(source),
        "target": str(target),
        "relabelled": new.metadata.get("relabelled", []),
        "labels_cheaper": int(np.sum(new.optimal_costs < old.optimal_costs * (1 - 1e-9))),
        "labels_costlier": int(np.sum(new.optimal_costs > old.optimal_costs * (1 + 1e-9))),
        "max_terminal_error": float(errors.max()),
        "max_abs_control": float(np.abs(new.control_sequences).max()),
        "costly_threshold": costly,
        "all": both(every),
        f"first_{first}": both(np.arange(len(new)) < first),
        "by_initial_angle": [
            {"band": [lo, hi], **both(sel)} for lo, hi in bands if (sel := (angle >= lo) & (angle < hi)).any()
        ],
    }


def _line(row: dict) -> str:
    before, after = row["before"], row["after"]
    return (
        f"mean optimum {before['mean_cost']:.0f} -> {after['mean_cost']:.0f}, "
        f"costly {before['above_costly']} -> {after['above_costly']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a cached data folder (or .npz)")
    parser.add_argument("target", type=Path, help="the new folder")
    parser.add_argument("--library", type=int, default=64, help="library size (solutions drawn from the set)")
    parser.add_argument("--problems", type=int, default=0, help="problems the library is tried on (0 = all)")
    parser.add_argument(
        "--problems-above", type=float, default=0.0, metavar="COST",
        help="try the library on the labels costing more than COST instead (e.g. the pendulum's costly route)",
    )  # fmt: skip
    parser.add_argument("--neighbours", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1, help="draws the library and its problems")
    parser.add_argument("--first", type=int, default=40, help="also compare the first N problems (closed loop's)")
    parser.add_argument("--costly", type=float, default=30000.0, help="count labels costing more than this")
    parser.add_argument("--record-only", action="store_true", help="only measure SOURCE against TARGET")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)
    load_before, start = _load(), time.perf_counter()
    if not args.record_only:
        if args.target.exists():
            parser.error(f"{args.target} exists: give a new folder (or --record-only)")
        relabel(
            args.source,
            args.target,
            library=args.library,
            problems=args.problems,
            seed=args.seed,
            neighbours=args.neighbours,
            above=args.problems_above,
        )
    record = compare(args.source, args.target, first=args.first, costly=args.costly)
    record.update(machine=machine_info(), time=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    record.update(load_average_1min={"before": load_before, "after": _load()})
    record["wall_seconds"] = round(time.perf_counter() - start, 1)
    _merge(Path(args.results), "nonlinear_expert_relabel", record, subkey=args.target.name)
    print(
        f"{args.target}: {record['labels_cheaper']} labels cheaper, {record['labels_costlier']} costlier; "
        f"max terminal error {record['max_terminal_error']:.1e}, max |u| {record['max_abs_control']:.4f}"
    )
    for name in ("all", f"first_{args.first}"):
        row = record[name]
        print(f"  {name:<10} {row['problems']:>5} problems: {_line(row)}")
    for row in record["by_initial_angle"]:
        lo, hi = row["band"]
        print(f"  |theta_0| in [{lo}, {hi}): {row['problems']:>4} problems: {_line(row)}")
    return 0


if __name__ == "__main__":
    from mlcore.errors import MlcoreError

    try:
        sys.exit(main())
    except MlcoreError as exc:  # a bad setting or data file: one line, not a traceback
        sys.exit(f"error: {exc}")
