"""The vehicle-episodes dataset: files, splits by episode, window alignment, normalisation, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mlcore.errors import ConfigError, DataError
from mlcore_continuous_dynamics.configs import VehicleEpisodesConfig
from mlcore_continuous_dynamics.data import DATA_FILE, MANIFEST_FILE, NORM_FILE, VehicleEpisodes

TINY = {"episodes": 6, "episode_seconds": 3.0, "sequence_length": 5, "horizon": 6, "stride": 2}  # = conftest's


def _data(**kw):
    return VehicleEpisodes(VehicleEpisodesConfig(**{**TINY, **kw})).prepare()


def test_splits_are_disjoint_sets_of_episodes(tiny_data):
    splits = {name: {e for e, _ in tiny_data.windows(name).index} for name in ("train", "val", "test")}
    assert splits["train"] and splits["val"] and splits["test"]
    assert not splits["train"] & splits["val"] and not splits["train"] & splits["test"]
    assert not splits["val"] & splits["test"]
    assert splits["train"] | splits["val"] | splits["test"] == set(range(TINY["episodes"]))


def test_no_window_of_a_test_episode_appears_in_training(tiny_data):
    """Leakage check on the items themselves: no training target equals a test target."""
    train = {tuple(tiny_data.train_set()[i][1].tolist()) for i in range(len(tiny_data.train_set()))}
    test = [tuple(tiny_data.test_set()[i][1].tolist()) for i in range(len(tiny_data.test_set()))]
    assert test and not any(t in train for t in test)


def test_window_targets_follow_the_history(tiny_data):
    windows = tiny_data.windows("train", horizon=3)
    e, s = windows.index[2]
    inputs, target = windows[2]
    states = tiny_data.tensors["states"][e]
    L = TINY["sequence_length"]
    assert torch.equal(inputs["states"], states[s : s + L])
    assert torch.equal(target, states[s + L : s + L + 3])
    assert inputs["actions"].shape == (L + 2, 4)
    assert torch.equal(inputs["actions"][L - 1], tiny_data.tensors["actions"][e, s + L - 1])  # u_t
    raw_dt = tiny_data.raw["times"][e, s + L] - tiny_data.raw["times"][e, s + L - 1]
    assert inputs["dt"][L - 1].item() == pytest.approx(raw_dt)


def test_one_step_target_is_the_next_state(tiny_data):
    _, target = tiny_data.train_set()[0]
    e, s = tiny_data.train_set().index[0]
    assert target.shape == (12,)
    assert torch.equal(target, tiny_data.tensors["states"][e, s + TINY["sequence_length"]])


def test_normalisation_uses_training_episodes_only(tiny_data):
    train = tiny_data.splits["train"]
    states = tiny_data.raw["states"][train].reshape(-1, 12)
    np.testing.assert_allclose(tiny_data.stats["state_mean"], states.mean(0))
    normalised = tiny_data.tensors["states"][train].reshape(-1, 12)
    np.testing.assert_allclose(normalised.mean(0).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalised.std(0, unbiased=False).numpy(), 1.0, atol=1e-3)


def test_generate_writes_files_that_load_back_identically(tmp_path, tiny_data):
    paths = VehicleEpisodes(VehicleEpisodesConfig(**TINY)).generate(tmp_path)
    assert sorted(p.name for p in paths) == sorted([DATA_FILE, MANIFEST_FILE, NORM_FILE])
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert len(manifest["weather"]) == TINY["episodes"]
    assert {"wind_mean", "gust_sigma", "rho", "temperature", "rain"} <= set(manifest["weather"][0])
    assert manifest["simulator"]["physics_rate_hz"] == 100.0
    loaded = _data(path=str(tmp_path))
    assert loaded.splits == tiny_data.splits
    assert torch.equal(loaded.tensors["states"], tiny_data.tensors["states"])
    norm = json.loads((tmp_path / NORM_FILE).read_text())
    np.testing.assert_allclose(norm["state_std"], tiny_data.stats["state_std"])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mlcore", *args], capture_output=True, text=True)


def test_cli_generate_with_episodes_flag(tmp_path):
    out = tmp_path / "vehicle"
    done = _cli(
        "data",
        "generate",
        "vehicle-episodes",
        "--episodes",
        "4",
        "--episode-seconds",
        "2",
        "--seed",
        "3",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["config"]["episodes"] == 4 and manifest["config"]["seed"] == 3
    with np.load(out / DATA_FILE) as npz:
        assert npz["states"].shape == (4, 41, 12)


def test_cli_errors_are_one_line(tmp_path):
    done = _cli("data", "generate", "vehicle-episodes", "--episodes", "2", "--out", str(tmp_path / "x"))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and "episodes=2" in done.stderr
    missing = tmp_path / "nowhere"
    done = _cli(
        "run",
        "--plugin",
        "continuous-dynamics",
        "--pipeline",
        "train-one",
        "--set",
        f"dataset.path={missing}",
        "--out",
        str(tmp_path / "run"),
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert (
        last.startswith(f"error: {missing}/episodes.npz not found") and "mlcore data generate vehicle-episodes" in last
    )


def test_same_seed_same_data_other_seed_other_data(tiny_data):
    again = _data()
    assert np.array_equal(again.raw["states"], tiny_data.raw["states"])
    other = _data(seed=1)
    assert not np.allclose(other.raw["states"][:, -1], tiny_data.raw["states"][:, -1])


def test_withheld_factors_carry_no_information(tiny_data):
    data = _data(withhold=["wind", "rain"])
    weather = data.tensors["weather"]
    assert torch.count_nonzero(weather[..., [0, 1, 2, 5]]) == 0
    assert torch.equal(weather[..., 3], tiny_data.tensors["weather"][..., 3])


def test_time_jitter_gives_irregular_time_stamps():
    data = _data(time_jitter=0.3)
    dt = np.diff(data.raw["times"], axis=1)
    assert dt.min() < 0.05 * 0.9 and dt.max() > 0.05 * 1.1 and dt.min() >= 0.05 * 0.7


def test_missing_file_names_it_and_the_command(tmp_path):
    with pytest.raises(
        DataError, match=r"episodes\.npz not found: create it with `mlcore data generate vehicle-episodes"
    ):
        _data(path=str(tmp_path))


def test_nan_in_the_file_is_named(tmp_path, tiny_data):
    VehicleEpisodes(VehicleEpisodesConfig(**TINY)).generate(tmp_path)
    raw = dict(tiny_data.raw)
    raw["actions"] = raw["actions"].copy()
    raw["actions"][0, 3, 1] = np.nan
    np.savez(tmp_path / DATA_FILE, **raw)
    with pytest.raises(DataError, match=r"episodes\.npz: actions holds 1 NaN/inf values"):
        _data(path=str(tmp_path))


def test_wrong_shape_in_the_file_is_named(tmp_path, tiny_data):
    VehicleEpisodes(VehicleEpisodesConfig(**TINY)).generate(tmp_path)
    raw = dict(tiny_data.raw)
    raw["weather"] = raw["weather"][..., :5]
    np.savez(tmp_path / DATA_FILE, **raw)
    with pytest.raises(DataError, match=r"weather has shape \(6, 61, 5\), expected \(6, 61, 6\)"):
        _data(path=str(tmp_path))


def test_window_longer_than_the_episodes_names_the_field():
    with pytest.raises(ConfigError, match=r"dataset\.sequence_length=80"):
        _data(sequence_length=80)


def test_too_few_episodes_is_refused():
    from mlcore.config import structure

    with pytest.raises(ConfigError, match="episodes=2 is out of range"):
        structure(VehicleEpisodesConfig, {"episodes": 2}, where="dataset.")
