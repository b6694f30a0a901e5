"""Ablation analysis against hand computations."""

from __future__ import annotations

import math

import pytest


def test_ablation_analysis_hand_computed():
    from mlcore_nav_rl.ablation import analyse, render_report, steps_to_threshold

    def hist(vals):
        return [
            {"timesteps": 100 * (i + 1), "success_rate": v, "return_mean": v, "collision_rate": 0.0}
            for i, v in enumerate(vals)
        ]

    runs = {
        "plain": [hist([0.0, 0.2, 0.4]), hist([0.1, 0.3, 0.6])],
        "per": [hist([0.3, 0.7, 0.9]), hist([0.5, 0.8, 0.9])],
    }
    assert steps_to_threshold(runs["plain"][0], 0.5) == math.inf and steps_to_threshold(runs["plain"][1], 0.5) == 300
    res = analyse(runs, threshold=0.5, baseline="plain")
    assert res["summary"]["per"]["steps_to_threshold"] == [200, 100]
    assert res["summary"]["per"]["median_steps_to_threshold"] == 150
    assert res["summary"]["plain"]["final_success_mean"] == pytest.approx(0.5)
    assert res["curves"]["per"]["mean"] == pytest.approx([0.4, 0.75, 0.9])
    assert res["tests"][0]["a"] == "per" and res["tests"][0]["diff"] > 0
    text = render_report(res)
    assert "| per |" in text and "never" not in text.split("| per |")[1].split("\n")[0]
