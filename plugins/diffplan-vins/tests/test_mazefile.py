"""The named .npz format refuses wrong arrays; the reference positional layout is read with exact labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlcore.errors import DataError
from mlcore_diffplan_vins.mazefile import load_named, load_reference, save_named
from mlcore_diffplan_vins.mazes import generate_mazes


@pytest.fixture(scope="module")
def mazes():  # type: ignore[no-untyped-def]
    return generate_mazes(30, 9, 4, seed=0)


def write(path: Path, *positional: np.ndarray, **arrays: np.ndarray) -> Path:
    np.savez(path, *positional, **arrays)
    return path


def named_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def test_round_trip(tmp_path: Path, mazes) -> None:  # type: ignore[no-untyped-def]
    split = np.arange(30) % 3
    path = save_named(tmp_path / "m.npz", mazes, split, {"size": 9, "seed": 0})
    back, split_back, params = load_named(path)
    np.testing.assert_array_equal(back.walls, mazes.walls)
    np.testing.assert_array_equal(back.optimal_actions, mazes.optimal_actions)
    np.testing.assert_array_equal(back.distances, mazes.distances.astype(np.float32))
    np.testing.assert_array_equal(split_back, split)
    assert params == {"size": 9, "seed": 0}
    assert named_arrays(path)["format_version"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda a: a.update(maps=np.where(np.isfinite(a["distances"]), a["distances"], 0).astype(np.uint8)),
            "maps must hold only 0",
        ),
        (lambda a: a.update(distances=a["distances"][::-1].copy()), "distances"),
        (lambda a: a.update(goals=a["goals"][::-1].copy()), "goal"),
        (lambda a: a.update(optimal_actions=np.roll(a["optimal_actions"], 1, axis=0)), "optimal_actions"),
        (lambda a: a.update(maps=a["maps"][:, :, ::-1].copy()), "do not belong together"),
        (lambda a: a.pop("split"), "missing array"),
        (lambda a: a.update(format_version=np.array(2)), "format_version=2"),
        (lambda a: a.update(params=np.array("{oops")), "params is not JSON"),
        (lambda a: a.update(goals=a["goals"][:5]), "goals must be"),
    ],
)
def test_wrong_arrays_are_refused_in_one_line(tmp_path: Path, mazes, change, message) -> None:  # type: ignore[no-untyped-def]
    good = save_named(tmp_path / "good.npz", mazes, np.zeros(30, dtype=np.int8), {})
    arrays = named_arrays(good)
    change(arrays)
    bad = write(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as info:
        load_named(bad)
    assert "\n" not in str(info.value) and "bad.npz" in str(info.value)


def test_positional_file_is_not_read_as_named(tmp_path: Path, mazes) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path / "ref.npz", *[mazes.walls] * 9)
    with pytest.raises(DataError, match="layout=reference"):
        load_named(path)


def test_missing_file_names_the_file_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"maze file not found: .*nope.npz \(create it with `mlcore data generate grid-mazes"
    ):
        load_named(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataError, match=r"not a readable \.npz"):
        load_named(tmp_path / "junk.npz")


def reference_file(path: Path, mazes, order: list[int]) -> Path:  # type: ignore[no-untyped-def]
    """Write ``mazes`` the way the reference generator does: maze 1 = free, goal maps and one-hot policies
    ``[N, A, 1, M, M]`` in the reference's own action order (``order[i]`` = our index of its action i)."""
    arrays = []
    for part in (slice(0, 20), slice(20, 25), slice(25, 30)):
        m = mazes.subset(part)
        opt = m.optimal_actions
        first = np.where(opt.any(axis=1), opt.argmax(axis=1), 0)  # one tie-broken optimal action
        onehot = np.zeros_like(opt)
        for ref_a, ours in enumerate(order):
            onehot[:, ref_a] = (first == ours) & opt.any(axis=1)
        arrays += [1 - m.walls, m.goal_maps()[:, None], onehot[:, :, None]]
    return write(path, *arrays)


def test_reference_layout_is_read_with_exact_labels_and_its_action_order(tmp_path: Path, mazes) -> None:  # type: ignore[no-untyped-def]
    order = [3, 0, 2, 1]  # the reference's N, E, S, W ... in our N, W, S, E indices
    back, split, params = load_reference(reference_file(tmp_path / "ref.npz", mazes, order))
    np.testing.assert_array_equal(back.walls, mazes.walls)
    np.testing.assert_array_equal(back.optimal_actions, mazes.optimal_actions)
    np.testing.assert_array_equal(split, [0] * 20 + [1] * 5 + [2] * 5)
    assert params["action_map"] == order


def test_reference_layout_with_wrong_labels_is_refused(tmp_path: Path, mazes) -> None:  # type: ignore[no-untyped-def]
    path = reference_file(tmp_path / "ref.npz", mazes, [0, 1, 2, 3])
    arrays = named_arrays(path)
    arrays["arr_2"] = np.roll(arrays["arr_2"], 1, axis=0)  # policies of other mazes
    write(path, **arrays)
    with pytest.raises(DataError, match="agree with exact shortest paths"):
        load_reference(path)
    arrays["arr_1"] = arrays["arr_1"] * 0
    write(path, **arrays)
    with pytest.raises(DataError, match="one-hot"):
        load_reference(path)


def test_params_are_json(tmp_path: Path, mazes) -> None:  # type: ignore[no-untyped-def]
    path = save_named(tmp_path / "m.npz", mazes, np.zeros(30, dtype=np.int8), {"a": [1, 2]})
    assert json.loads(str(named_arrays(path)["params"])) == {"a": [1, 2]}
