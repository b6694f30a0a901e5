"""``mlcore run --plugin nav-rl --pipeline selfplay``: league self-play vs scripted obstacles.

For every seed: a DQN trained among robots driven by a league of its own frozen snapshots, and a
DQN with the same initial weights trained among scripted constant-velocity robots; both are then
evaluated among robots neither has met (``eval_opponents``, scripted goal-seekers by default) on
the same layouts. ``selfplay.json`` holds every figure, ``league_seed<k>.json`` the league
(members, ages, ratings), ``report.md`` the comparison.
"""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from mlcore.pipelines import Pipeline
from mlcore.runs import RunContext
from mlcore_nav_rl.selfplay.training import SelfPlayConfig

log = logging.getLogger(__name__)


@attrs.define
class SelfPlayPipelineConfig:
    """The self-play settings plus the seeds to train (empty: the run's seed)."""

    selfplay: SelfPlayConfig = attrs.field(factory=SelfPlayConfig)
    seeds: list[int] = attrs.field(factory=list)


def _save_model(model: Any, path: Path) -> None:
    from mlcore.io import atomic_write

    buf = io.BytesIO()
    model.save(buf)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def run_selfplay(
    cfg: SelfPlayConfig,
    out_dir: str | Path,
    seeds: list[int],
    *,
    device: Any = "cpu",
    reuse_completed: bool = False,
    train_seeds: list[int] | None = None,
) -> dict[str, Any]:
    """Train and compare for every seed; write ``selfplay.json``, ``league_seed<k>.json``, ``report.md``.

    Every seed's figures are also written to ``seed<k>.json`` with the config; ``reuse_completed``
    takes them from there (same config) instead of training again, and ``train_seeds`` trains only
    those seeds, so the seeds can be spread over processes and analysed together afterwards.
    """
    from mlcore.io import atomic_write_json, atomic_write_text
    from mlcore_nav_rl.evaluation.stats import bootstrap_ci, paired_compare
    from mlcore_nav_rl.selfplay.training import evaluate_policy_among, train_dqn

    out = Path(out_dir)
    agents = ["league", "scripted"] if cfg.compare_scripted else ["league"]
    per_seed: list[dict[str, Any]] = []
    cfg_dict = json.loads(json.dumps(attrs.asdict(cfg)))  # as read back from seed<k>.json (tuples -> lists)
    for seed in seeds:
        seed_file = out / f"seed{seed}.json"
        if reuse_completed and seed_file.is_file():
            saved = json.loads(seed_file.read_text())
            if saved.get("config") == cfg_dict:
                per_seed.append(saved["row"])
                continue
        if train_seeds is not None and seed not in train_seeds:
            continue
        row: dict[str, Any] = {"seed": seed}
        for agent in agents:
            t = time.time()
            model, league = train_dqn(cfg, "league" if agent == "league" else "constant", seed, device=device)
            _save_model(model, out / f"{agent}_seed{seed}.zip")
            ev = evaluate_policy_among(model.policy, cfg, cfg.eval_opponents, cfg.eval_episodes, seed=10_000 + seed)
            own = evaluate_policy_among(
                model.policy,
                cfg,
                "league" if agent == "league" else "constant",
                cfg.eval_episodes,
                seed=20_000 + seed,
                league=league,
            )
            row[agent] = {
                "unseen": {k: v for k, v in ev.items() if k != "success"},
                "training_robots": {k: v for k, v in own.items() if k != "success"},
                "seconds": time.time() - t,
            }
            if league is not None:
                best = league.best()
                row[agent]["league"] = {
                    "size": len(league.members),
                    "learner_rating": league.learner_rating,
                    "best_member": {"id": best.member_id, "step": best.step, "rating": best.rating},
                }
                atomic_write_json(
                    out / f"league_seed{seed}.json",
                    {"learner_rating": league.learner_rating, "members": league.table()},
                )
            log.info("selfplay seed %d %s: unseen success %.2f", seed, agent, ev["success_rate"])
        atomic_write_json(seed_file, {"config": cfg_dict, "row": row})
        per_seed.append(row)
    if not per_seed:
        return {"config": cfg_dict, "seeds": [], "per_seed": [], "summary": {}}
    summary: dict[str, Any] = {}
    for agent in agents:
        rates = [r[agent]["unseen"]["success_rate"] for r in per_seed]
        coll = [r[agent]["unseen"]["collision_rate"] for r in per_seed]
        lo, hi = bootstrap_ci(rates)
        summary[agent] = {
            "unseen_success_mean": float(np.mean(rates)),
            "unseen_success_ci": [lo, hi],
            "unseen_collision_mean": float(np.mean(coll)),
        }
    result: dict[str, Any] = {
        "config": cfg_dict,
        "seeds": [r["seed"] for r in per_seed],
        "per_seed": per_seed,
        "summary": summary,
    }
    if cfg.compare_scripted and len(per_seed) >= 2:
        result["paired_league_vs_scripted"] = paired_compare(
            [r["league"]["unseen"]["success_rate"] for r in per_seed],
            [r["scripted"]["unseen"]["success_rate"] for r in per_seed],
        )
    atomic_write_json(out / "selfplay.json", result)
    atomic_write_text(out / "report.md", render_report(result))
    return result


def render_report(result: dict[str, Any]) -> str:
    """``report.md``: what was trained, success among unseen robots per agent and seed, the paired test."""
    c = result["config"]
    lines = [
        "# nav-rl self-play",
        "",
        f"DQN, {c['total_timesteps']} environment steps per agent, {c['n_others']} other robots in a "
        f"{c['env']['arena_size']:g} m arena. *league*: the other robots are frozen snapshots of the learner "
        f"(one every {c['snapshot_every']} steps, at most {c['league_size']}, Elo-rated); *scripted*: they move at "
        f"constant velocity. Both evaluated over {c['eval_episodes']} episodes among unseen "
        f"'{c['eval_opponents']}' robots (same layouts for both).",
        "",
        "| seed | agent | success (unseen robots) | collisions (unseen) | success among its training robots |",
        "|---|---|---|---|---|",
    ]
    for r in result["per_seed"]:
        for agent in ("league", "scripted"):
            if agent in r:
                a = r[agent]
                lines.append(
                    f"| {r['seed']} | {agent} | {a['unseen']['success_rate']:.2f} | "
                    f"{a['unseen']['collision_rate']:.2f} | {a['training_robots']['success_rate']:.2f} |"
                )
    lines += ["", "| agent | mean success among unseen robots [95% bootstrap CI] |", "|---|---|"]
    for agent, s in result["summary"].items():
        lo, hi = s["unseen_success_ci"]
        lines.append(f"| {agent} | {s['unseen_success_mean']:.2f} [{lo:.2f}, {hi:.2f}] |")
    p = result.get("paired_league_vs_scripted")
    if p:
        lines += [
            "",
            f"League minus scripted, paired by seed: mean {p['mean_diff']:+.3f} "
            f"[{p['mean_diff_ci_low']:+.3f}, {p['mean_diff_ci_high']:+.3f}], Wilcoxon p = {p['wilcoxon_p']:.3g}, "
            f"paired t p = {p['paired_t_p']:.3g} (n = {int(p['n'])}).",
        ]
    return "\n".join(lines) + "\n"


class SelfPlayPipeline(Pipeline):
    """League self-play vs scripted-obstacle training, compared among unseen robots."""

    config: SelfPlayPipelineConfig

    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Train and compare; headline: mean success among unseen robots per agent."""
        seeds = list(self.config.seeds) or [ctx.seed]
        res = run_selfplay(self.config.selfplay, ctx.out_dir, seeds, device=ctx.device)
        out = {f"{a}_unseen_success": s["unseen_success_mean"] for a, s in res["summary"].items()}
        if "paired_league_vs_scripted" in res:
            out["league_minus_scripted"] = res["paired_league_vs_scripted"]["mean_diff"]
        return out
