"""Tests of the shared toy data module and model (mlcore/testing/toys.py)."""

from __future__ import annotations

import pytest
import torch

from mlcore.config import structure
from mlcore.errors import ConfigError
from mlcore.testing import checks
from mlcore.testing.toys import ToyData, ToyDataConfig, ToyNet, ToyNetConfig


def _stack(dataset):
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))), strict=True)
    return torch.stack(xs), torch.stack(ys)


def test_default_data_is_a_sine_of_a_linear_map_split_75_25():
    data = ToyData().prepare()
    assert (len(data.train_set()), len(data.val_set())) == (72, 24) and data.test_set() is None
    x, y = _stack(data.train_set())
    assert x.shape == (72, 2) and y.shape == (72, 1)
    torch.testing.assert_close(y, torch.sin(x @ data.weight))
    assert data.state_dict()["n"] == 96
    torch.testing.assert_close(data.state_dict()["mean"], data.mean)


def test_linear_target_and_test_split():
    data = ToyData(ToyDataConfig(num_samples=50, in_features=3, out_features=2, target="linear", test_fraction=0.4))
    data.prepare()
    assert (len(data.train_set()), len(data.val_set()), len(data.test_set())) == (18, 12, 20)
    x, y = _stack(data.test_set())
    torch.testing.assert_close(y, x @ data.weight)
    seen = {tuple(s[0].tolist()) for split in (data.train_set(), data.val_set(), data.test_set()) for s in split}
    assert len(seen) == 50, "the splits are disjoint and cover every sample"


def test_blobs_are_balanced_labels_nearest_to_their_centre():
    data = ToyData(ToyDataConfig(num_samples=90, target="blobs", out_features=3, val_fraction=0.0)).prepare()
    x, labels = _stack(data.train_set())
    assert labels.dtype == torch.int64 and torch.bincount(labels).tolist() == [30, 30, 30]
    nearest = torch.cdist(x, data.weight).argmin(1)
    assert torch.equal(nearest, labels)


def test_same_seed_same_data_other_seed_other_data():
    torch.manual_seed(1)
    a = ToyData(ToyDataConfig(seed=3)).prepare()
    torch.manual_seed(2)  # the global RNG plays no part
    b = ToyData(ToyDataConfig(seed=3)).prepare()
    c = ToyData(ToyDataConfig(seed=4)).prepare()
    assert torch.equal(_stack(a.train_set())[0], _stack(b.train_set())[0])
    assert not torch.equal(_stack(a.train_set())[0], _stack(c.train_set())[0])
    checks.check_dataset_seed(lambda seed: ToyData(ToyDataConfig(seed=seed)), 3)


def test_dict_batches_and_restored_state():
    data = ToyData(ToyDataConfig(dict_batches=True)).prepare()
    item = data.train_set()[0]
    assert set(item) == {"x", "y"} and item["x"].shape == (2,)
    fresh = ToyData()
    fresh.load_state_dict({"mean": torch.zeros(2), "n": 96})
    assert fresh.restored is not None and torch.equal(fresh.restored["mean"], torch.zeros(2))


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="leaves no training data"):
        structure(ToyDataConfig, {"val_fraction": 0.5, "test_fraction": 0.5})
    with pytest.raises(ConfigError, match=r"target='circle' is not allowed \(allowed: sine, linear, blobs\)"):
        structure(ToyDataConfig, {"target": "circle"})


def test_net_shapes_dropout_and_example_input():
    model = ToyNet(ToyNetConfig(in_features=3, hidden=5, out_features=4, dropout=0.5))
    assert model(torch.randn(7, 3)).shape == (7, 4)
    assert isinstance(model.net[2], torch.nn.Dropout) and model.net[2].p == 0.5
    assert torch.equal(model.example_input(3), model.example_input(3)) and model.example_input(3).shape == (3, 3)


def test_toys_pass_the_plain_checks(tmp_path):
    data = ToyData(ToyDataConfig(num_samples=48)).prepare()
    checks.check_dataset(data, lambda: ToyData(ToyDataConfig(num_samples=48)))
    batch = checks.first_batch(data, 8)
    torch.manual_seed(0)
    model = ToyNet()
    checks.check_model_forward(model, batch)
    assert checks.check_output_shape(model, batch) and checks.check_batch_independence(model, batch)
    before, after = checks.check_model_trains(model, batch, torch.nn.MSELoss())
    assert after < 0.99 * before
    checks.check_example_input(model, batch)
