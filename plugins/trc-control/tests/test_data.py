"""Tests of mlcore_trc_control.data: the .npz format, the data module and its error messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlcore.errors import ConfigError, DataError
from mlcore_trc_control.data import DATA_FILE, LQRData, LQRDataConfig, LQRProblemSet


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lqr_train")
    paths = LQRData(LQRDataConfig(num_samples=64, seed=5)).generate(out)
    assert paths == [out / DATA_FILE]
    return paths[0]


def _rewrite(src: Path, dst: Path, **changes: object) -> Path:
    with np.load(src) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value  # type: ignore[assignment]
    np.savez(dst, **arrays)
    return dst


def test_file_holds_every_array_with_consistent_shapes(data_file: Path) -> None:
    with np.load(data_file) as npz:
        assert npz["initial_states"].shape == (64, 2)
        assert npz["target_states"].shape == (64, 2)
        assert npz["control_sequences"].shape == (64, 15, 1)
        assert npz["state_trajectories"].shape == (64, 16, 2)
        assert npz["optimal_costs"].shape == (64,)
        assert npz["lqr_control_sequences"].shape == (64, 15, 1)
        meta = json.loads(str(npz["metadata"][()]))
        x0, u, states = npz["initial_states"], npz["control_sequences"], npz["state_trajectories"]
    assert meta["expert"] == "optimal" and meta["expert_requested"] == "optimal"
    assert meta["problem"]["name"] == "double_integrator"
    assert meta["problem"]["num_steps"] == 15 and meta["problem"]["control_limit"] == 4.0
    assert meta["seed"] == 5 and meta["num_samples"] == 64
    assert meta["lqr_summary"]["success_rate"] < 0.999 <= meta["expert_summary"]["success_rate"]
    # the trajectories are the rollouts of the stored controls
    ps = LQRProblemSet.load(data_file)
    np.testing.assert_allclose(ps.system.rollout(x0, u), states, atol=1e-10)
    np.testing.assert_allclose(ps.system.cost(states, u, ps.target_states), ps.optimal_costs, rtol=1e-10)
    # the box LQR minimises the stated cost without x_N = r: cheaper, never more expensive
    assert np.all(ps.lqr_costs <= ps.optimal_costs + 1e-9)
    assert ps.optimal_costs.mean() < 1.05 * ps.lqr_costs.mean()  # the exact terminal costs little


def test_generation_is_seeded() -> None:
    a = LQRData(LQRDataConfig(num_samples=16, seed=1, test_num_samples=0)).prepare().train_problems()
    b = LQRData(LQRDataConfig(num_samples=16, seed=1, test_num_samples=0)).prepare().train_problems()
    c = LQRData(LQRDataConfig(num_samples=16, seed=2, test_num_samples=0)).prepare().train_problems()
    np.testing.assert_array_equal(a.initial_states, b.initial_states)
    assert not np.allclose(a.initial_states, c.initial_states)


def test_data_module_splits_and_items(data_file: Path) -> None:
    data = LQRData(LQRDataConfig(path=str(data_file.parent), test_path=str(data_file), val_fraction=0.25)).prepare()
    train, val, test = data.train_set(), data.val_set(), data.test_set()
    assert (len(train), len(val), len(test)) == (48, 16, 64)
    problem, controls = train[0]
    assert problem.shape == (5,) and controls.shape == (15, 1)
    assert float(problem[-1]) == pytest.approx(5.0)  # the horizon
    assert data.eval_set() is test
    assert data.state_dict()["problem"]["name"] == "double_integrator"


def test_planar_system_shapes() -> None:
    data = LQRData(LQRDataConfig(system="planar_double_integrator", num_samples=20, test_num_samples=4)).prepare()
    problem, controls = data.train_set()[0]
    assert problem.shape == (9,) and controls.shape == (15, 2)
    assert len(data.test_set()) == 4


def test_missing_file_names_it_and_the_command(tmp_path: Path) -> None:
    cfg = LQRDataConfig(path=str(tmp_path / "lqr_train"), num_samples=10000, seed=42)
    with pytest.raises(DataError) as info:
        LQRData(cfg).prepare().train_set()
    msg = str(info.value)
    assert str(tmp_path / "lqr_train" / DATA_FILE) in msg
    assert f"mlcore data generate lqr --num-samples 10000 --seed 42 --out {tmp_path / 'lqr_train'}" in msg
    assert "\n" not in msg


def test_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / DATA_FILE
    bad.write_bytes(b"this is not a zip archive")
    with pytest.raises(DataError, match=r"not a readable \.npz file"):
        LQRProblemSet.load(bad)


def test_missing_array(tmp_path: Path, data_file: Path) -> None:
    path = _rewrite(data_file, tmp_path / "x.npz", control_sequences=None)
    with pytest.raises(DataError, match=r"missing array.*control_sequences"):
        LQRProblemSet.load(path)


def test_wrong_shape_names_the_array(tmp_path: Path, data_file: Path) -> None:
    path = _rewrite(data_file, tmp_path / "x.npz", control_sequences=np.zeros((64, 10, 1)))
    with pytest.raises(DataError, match=r"control_sequences has shape \(64, 10, 1\), expected \(64, 15, 1\)"):
        LQRProblemSet.load(path)


def test_nan_is_rejected(tmp_path: Path, data_file: Path) -> None:
    with np.load(data_file) as npz:
        targets = npz["target_states"].copy()
    targets[3, 1] = np.nan
    path = _rewrite(data_file, tmp_path / "x.npz", target_states=targets)
    with pytest.raises(DataError, match="target_states contains 1 NaN/inf"):
        LQRProblemSet.load(path)


def test_bad_metadata(tmp_path: Path, data_file: Path) -> None:
    path = _rewrite(data_file, tmp_path / "x.npz", metadata=np.array("{not json"))
    with pytest.raises(DataError, match="metadata is missing or not an lqr problem definition"):
        LQRProblemSet.load(path)


def test_mismatched_problem(data_file: Path) -> None:
    cfg = LQRDataConfig(path=str(data_file), system="double_integrator", num_steps=20, test_num_samples=0)
    with pytest.raises(DataError, match="was generated for another problem"):
        LQRData(cfg).prepare().train_set()


def test_checkpoint_state_mismatch() -> None:
    planar = LQRData(LQRDataConfig(system="planar_double_integrator", num_samples=8, test_num_samples=0))
    data = LQRData(LQRDataConfig(num_samples=8, test_num_samples=0))
    with pytest.raises(DataError, match="trained on system 'planar_double_integrator'"):
        data.load_state_dict(planar.state_dict())


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"data\.initial_range"):
        LQRData(LQRDataConfig(initial_range=[1.0, 2.0, 3.0])).prepare()
    from mlcore.config import structure

    with pytest.raises(ConfigError, match="num_samples"):
        structure(LQRDataConfig, {"num_samples": 0}, where="data.")
    with pytest.raises(ConfigError, match="expert"):
        structure(LQRDataConfig, {"expert": "magic"}, where="data.")
    with pytest.raises(ConfigError, match=r"data\.expert_library_problems"):
        structure(LQRDataConfig, {"expert_library_problems": -1}, where="data.")


def test_same_train_and_test_seed_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="mlcore_trc_control.data"):
        LQRData(LQRDataConfig(num_samples=8, test_num_samples=4, seed=3, test_seed=3)).setup()
    assert [r.getMessage() for r in caplog.records if "test_seed" in r.getMessage()] == [
        "dataset.seed == dataset.test_seed (3): the test problems are the training problems; "
        "set a different dataset.test_seed"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="mlcore_trc_control.data"):
        LQRData(LQRDataConfig(num_samples=8, test_num_samples=4, seed=3, test_seed=4)).setup()
    assert not caplog.records


# ---------------------------------------------------------------------- nonlinear systems
def _nonlinear_config(**changes: object) -> LQRDataConfig:
    base = {"system": "vanderpol", "num_steps": 10, "num_samples": 6, "test_num_samples": 0, "seed": 7}
    return LQRDataConfig(**{**base, **changes})  # type: ignore[arg-type]


def test_nonlinear_generation_is_reproducible_from_the_seed(tmp_path: Path) -> None:
    a = LQRData(_nonlinear_config(horizon_range=[4.0, 6.0])).train_problems()
    b = LQRData(_nonlinear_config(horizon_range=[4.0, 6.0])).train_problems()
    c = LQRData(_nonlinear_config(horizon_range=[4.0, 6.0], seed=8)).train_problems()
    for key in ("initial_states", "control_sequences", "time_horizons", "lqr_control_sequences"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert not np.allclose(a.initial_states, c.initial_states)
    assert a.expert == "optimal" and a.metadata["expert_summary"]["success_rate"] == 1.0
    # every problem carries its own horizon, the model input's last column, inside the range
    assert a.time_horizons is not None and np.all((a.time_horizons >= 4.0) & (a.time_horizons <= 6.0))
    assert np.array_equal(a.problems()[:, -1], a.time_horizons) and np.ptp(a.time_horizons) > 0.1
    # the stored states are the RK4 rollout of the labels with each problem's own horizon
    assert np.allclose(a.rollout(a.control_sequences), a.state_trajectories)
    fixed = a.system.rollout(a.initial_states, a.control_sequences)
    assert not np.allclose(fixed, a.state_trajectories)


def test_nonlinear_file_round_trip_keeps_horizons_and_system(tmp_path: Path) -> None:
    ps = LQRData(_nonlinear_config(horizon_range=[4.0, 6.0])).train_problems()
    path = ps.save(tmp_path / DATA_FILE)
    back = LQRProblemSet.load(path)
    assert back.system.same_problem(ps.system) and back.system.name == "vanderpol"
    assert np.array_equal(back.time_horizons, ps.time_horizons)
    assert np.array_equal(back.subset(np.array([1, 3])).time_horizons, ps.time_horizons[[1, 3]])
    # the config that made it loads it; a linear config of the same shape refuses it in one line
    loaded = LQRData(_nonlinear_config(path=str(path), horizon_range=[4.0, 6.0])).train_problems()
    assert np.array_equal(loaded.control_sequences, ps.control_sequences)
    with pytest.raises(DataError, match="was generated for another problem"):
        LQRData(LQRDataConfig(path=str(path), num_steps=10, test_num_samples=0)).train_problems()
    bad = _rewrite(path, tmp_path / "bad.npz", time_horizons=np.array([5.0, -1.0]))
    with pytest.raises(DataError, match="time_horizons must be 6 positive finite numbers"):
        LQRProblemSet.load(bad)


def test_linear_horizon_range_labels_each_problem_with_its_own_discretisation(tmp_path: Path) -> None:
    from mlcore_trc_control.lqr.solvers import solve_expert

    cfg = LQRDataConfig(num_samples=12, seed=3, horizon_range=[3.0, 6.0], test_num_samples=0)
    ps = LQRData(cfg).train_problems()
    horizons = ps.time_horizons
    assert horizons is not None and np.all((horizons >= 3.0) & (horizons <= 6.0)) and np.ptp(horizons) > 1.0
    assert np.array_equal(ps.problems()[:, -1], horizons)
    # the labels are the exact optimum of each problem's own ZOH: x_N = r, and equal to a one-problem solve
    assert ps.expert_terminal_errors.max() < 1e-9
    assert np.allclose(ps.rollout(ps.control_sequences), ps.state_trajectories)
    assert not np.allclose(ps.system.rollout(ps.initial_states, ps.control_sequences), ps.state_trajectories)
    one = ps.system.with_horizon(float(horizons[4]))
    alone, _ = solve_expert(one, ps.initial_states[4:5], ps.target_states[4:5])
    assert np.allclose(alone.controls[0], ps.control_sequences[4], atol=1e-9)
    assert np.allclose(ps.cost(ps.state_trajectories, ps.control_sequences), ps.optimal_costs)
    # round trip keeps the horizons and the continuous model
    back = LQRProblemSet.load(ps.save(tmp_path / DATA_FILE))
    assert np.array_equal(back.time_horizons, horizons) and back.system.ac is not None
    assert np.allclose(back.rollout(back.control_sequences), ps.state_trajectories)


def test_rocket_initial_states_are_drawn_around_its_descent_state() -> None:
    from mlcore_trc_control.data import generate_problem_set
    from mlcore_trc_control.nonlinear.systems import build_nonlinear_system

    sys = build_nonlinear_system("rocket", num_steps=10)
    init, target = LQRDataConfig(system="rocket").ranges(7)
    ps = generate_problem_set(sys, 3, 0, init, target, expert="lqr")
    low, high = sys.initial_center - init, sys.initial_center + init
    assert np.all((ps.initial_states >= low) & (ps.initial_states <= high))
    assert ps.initial_states[:, 2].min() >= 300.0 and ps.initial_states[:, 6].min() >= 1700.0
    assert np.array_equal(ps.target_states, np.zeros((3, 7)))
    # the terminal error leaves the (free) mass out
    assert np.allclose(ps.expert_terminal_errors, np.linalg.norm(ps.state_trajectories[:, -1, :6], axis=1))
