"""train-one: reproducibility, checkpoints that name their model, one-line config errors."""

from __future__ import annotations

import pytest
import torch

import mlcore
from mlcore.errors import CheckpointError, ConfigError
from mlcore.training.checkpoint import build_model

TINY = ["dataset.episodes=6", "dataset.episode_seconds=3.0", "dataset.sequence_length=5", "dataset.horizon=6"]
FAST = [*TINY, "trainer.epochs=2", "trainer.batch_size=32", "evaluator.horizon=6", "evaluator.max_rollout_windows=16"]


def _run(out, *overrides, seed=0):
    return mlcore.run(
        "continuous-dynamics",
        pipeline="train-one",
        overrides=[*FAST, *overrides],
        out=out,
        device="cpu",
        seed=seed,
        threads=1,
        progress=False,
    )


def test_same_seed_same_weights_and_metrics(tmp_path):
    a = _run(tmp_path / "a", "model.name=gru_dynamics", "model.hidden_dim=8")
    b = _run(tmp_path / "b", "model.name=gru_dynamics", "model.hidden_dim=8")
    assert a.metrics["mse"] == b.metrics["mse"]
    assert a.metrics["rollout_mse/last"] == b.metrics["rollout_mse/last"]
    wa = torch.load(a.out_dir / "checkpoints" / "best.pt", weights_only=False)["model"]
    wb = torch.load(b.out_dir / "checkpoints" / "best.pt", weights_only=False)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = _run(tmp_path / "c", "model.name=gru_dynamics", "model.hidden_dim=8", seed=1)
    assert c.metrics["mse"] != a.metrics["mse"]


def test_checkpoint_from_another_model_says_so(tmp_path):
    result = _run(tmp_path / "lin", "model.name=linear_dynamics")
    best = result.out_dir / "checkpoints" / "best.pt"
    assert isinstance(build_model(best, expect="linear_dynamics"), torch.nn.Module)
    with pytest.raises(
        CheckpointError, match="holds model 'linear_dynamics' from plugin 'continuous-dynamics', not 'neural_ode'"
    ):
        build_model(best, expect="neural_ode")
    again = mlcore.evaluate(best, out_dir=tmp_path / "eval", device="cpu")
    assert again["mse"] == pytest.approx(result.metrics["mse"], rel=1e-6)


def test_model_size_against_the_data_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"model.weather_dim=5 contradicts the data, which has weather_dim=6"):
        _run(tmp_path / "x", "model.name=gru_dynamics", "model.weather_dim=5")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.hidden_dim=0", "hidden_dim=0 is out of range"),
        ("dataset.time_jitter=2", "time_jitter=2"),
        ('dataset.withhold=["fog"]', "withhold=['fog'] is not allowed"),
    ],
)
def test_values_out_of_range_name_the_field(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _run(tmp_path / "x", "model.name=gru_dynamics", override)
