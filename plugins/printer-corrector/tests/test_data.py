"""The dataset: split by layer without leakage, statistics from training only, items, files, errors."""

from __future__ import annotations

import json

import attrs
import numpy as np
import pytest
import torch

from mlcore.errors import DataError
from mlcore_printer_corrector.data import PrinterData, PrinterDataConfig, compute_stats, window_starts
from mlcore_printer_corrector.parts import SliceConfig

SMALL = PrinterDataConfig(
    parts=["boat"], layers="sampled:6", sequence_length=20, stride=2, slicing=SliceConfig(layer_height=1.0)
)


@pytest.fixture(scope="module")
def data() -> PrinterData:
    return PrinterData(SMALL).prepare()


def test_layers_are_split_without_leakage(data):
    units = {s: {tuple(u) for u in data.raw[s]["units"]} for s in ("train", "val", "test")}
    assert sum(len(u) for u in units.values()) == 6
    assert all(units.values())
    assert not (units["train"] & units["val"] or units["train"] & units["test"] or units["val"] & units["test"])
    for split in ("train", "val", "test"):
        offsets = data.raw[split]["offsets"].numpy()
        starts = window_starts(offsets, 20, 2)
        series_of_start = np.searchsorted(offsets, starts, side="right")
        series_of_end = np.searchsorted(offsets, starts + 19, side="right")
        assert (series_of_start == series_of_end).all()  # no window crosses from one layer into another


def test_statistics_come_from_the_training_layers_only(data):
    train = data.raw["train"]
    assert data.stats == compute_stats(train["features"], train["targets"])
    everything = compute_stats(
        torch.cat([data.raw[s]["features"] for s in ("train", "val", "test")]),
        torch.cat([data.raw[s]["targets"] for s in ("train", "val", "test")]),
    )
    assert data.stats["feature_mean"] != everything["feature_mean"]


def test_items_are_normalised_windows_and_the_error_at_their_end(data):
    ds = data.test_set()
    item = ds[3]
    assert item["features"].shape == (20, 4) and item["target"].shape == (2,)
    features, target = item  # also an (inputs, targets) pair
    s = int(ds.starts[3])
    raw = data.raw["test"]
    mean, std = torch.tensor(data.stats["feature_mean"]), torch.tensor(data.stats["feature_std"])
    torch.testing.assert_close(features, ((raw["features"][s : s + 20] - mean) / std).float())
    tmean, tstd = torch.tensor(data.stats["target_mean"]), torch.tensor(data.stats["target_std"])
    torch.testing.assert_close(target, ((raw["targets"][s + 19] - tmean) / tstd).float())
    torch.testing.assert_close(data.denormalise_targets(target.double()).float(), raw["targets"][s + 19])


def test_tracking_error_is_on_the_tenth_of_a_millimetre_scale(data):
    rms = float(data.raw["train"]["targets"].pow(2).mean().sqrt())
    assert 0.02 < rms < 0.3


def test_written_splits_read_back_identically(data, tmp_path):
    data.write(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"gcode", "train.pt", "val.pt", "test.pt", "stats.json"}
    assert (tmp_path / "gcode" / "boat.gcode").is_file()
    assert json.loads((tmp_path / "stats.json").read_text()) == data.stats
    again = PrinterData(attrs.evolve(SMALL, path=str(tmp_path))).prepare()
    for i in (0, 7):
        torch.testing.assert_close(again.test_set()[i].features, data.test_set()[i].features)
    assert again.toolpath("boat").layers == data.toolpath("boat").layers


def test_same_seed_same_data_other_seed_other_split(data):
    same = PrinterData(SMALL).prepare()
    assert same.raw["test"]["units"] == data.raw["test"]["units"]
    torch.testing.assert_close(same.train_set()[5].features, data.train_set()[5].features)
    other = PrinterData(attrs.evolve(SMALL, seed=1)).prepare()
    assert other.raw["train"]["units"] != data.raw["train"]["units"]


def test_input_noise_only_on_training_windows(data):
    noisy = PrinterData(attrs.evolve(SMALL, input_noise=0.1)).prepare()
    a, b = noisy.train_set()[0].features, noisy.train_set()[0].features
    assert not torch.equal(a, b)
    assert (a - data.train_set()[0].features).std() == pytest.approx(0.1, rel=0.3)
    torch.testing.assert_close(noisy.val_set()[0].features, data.val_set()[0].features)


def test_missing_split_names_the_file_and_the_command(tmp_path):
    with pytest.raises(
        DataError, match=r"train\.pt does not exist \(create it with `mlcore data generate printer_layers --out"
    ):
        PrinterData(attrs.evolve(SMALL, path=str(tmp_path))).prepare()


def test_bad_split_files_name_the_field(data, tmp_path):
    data.write(tmp_path)
    raw = torch.load(tmp_path / "val.pt", weights_only=True)
    raw["targets"][3, 1] = float("nan")
    torch.save(raw, tmp_path / "val.pt")
    with pytest.raises(DataError, match=r"val\.pt field 'targets' holds NaN"):
        PrinterData(attrs.evolve(SMALL, path=str(tmp_path))).prepare()
    raw["targets"] = torch.zeros(5, 3)
    torch.save(raw, tmp_path / "val.pt")
    with pytest.raises(DataError, match=r"val\.pt field 'targets' has shape \(5, 3\), expected \(N, 2\)"):
        PrinterData(attrs.evolve(SMALL, path=str(tmp_path))).prepare()


def test_windows_longer_than_every_layer_are_refused():
    with pytest.raises(DataError, match=r"no layer is longer than sequence_length=2000"):
        PrinterData(attrs.evolve(SMALL, sequence_length=2000, layers="sampled:2")).prepare()


def test_missing_gcode_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"dataset\.gcode_files: .*mine\.gcode does not exist"):
        PrinterData(attrs.evolve(SMALL, parts=[], gcode_files=[str(tmp_path / "mine.gcode")])).prepare()


def test_a_gcode_file_without_moves_is_named(tmp_path):
    empty = tmp_path / "empty.gcode"
    empty.write_text("; only a comment\nM104 S200\n")
    with pytest.raises(DataError, match=r"dataset\.gcode_files: .*empty\.gcode gives no layer .*\(0 moves"):
        PrinterData(attrs.evolve(SMALL, gcode_files=[str(empty)])).prepare()
