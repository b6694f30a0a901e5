"""Experiment files: one-line errors naming the file, the stage and the key."""

from __future__ import annotations

import pytest

from mlcore.errors import ConfigError
from mlcore.experiment import load_experiment
from mlcore.experiment.spec import references


def write(tmp_path, text: str, name: str = "exp.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[stage]]\nname = "a"\nkind = "bake"\n', r"stage 'a': kind='bake' is not allowed \(allowed: data, train"),
        ('[[stage]]\nkind = "train"\n', r"stage #1 needs a name"),
        ('[[stage]]\nname = "a"\nkind = "report"\n[[stage]]\nname = "a"\nkind = "report"\n', "used twice"),
        ('[[stage]]\nname = "a"\nkind = "report"\nneeds = ["b"]\n', r"needs 'b', which is not an earlier stage"),
        ('[[stage]]\nname = "a"\nkind = "train"\nset = ["x=${a.dir}"]\n', r"needs 'a', which is not an earlier stage"),
        ('[[stage]]\nname = "a"\nkind = "train"\nseeds = []\n', "seeds: give at least one seed"),
        ('[[stage]]\nname = "a"\nkind = "train"\nsede = 1\n', r"stage 'a': .*sede"),
        ('[[stage]]\nname = "a"\nkind = "evaluate"\nselect = "worst"\n', r"select='worst' is not allowed"),
        ("[experiment]\nname = 'x'\n", "no stages"),
        ('[experiment]\nnaem = "x"\n[[stage]]\nname = "a"\nkind = "report"\n', "experiment.naem is not a known key"),
    ],
)
def test_mistakes_are_one_line_config_errors(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_experiment(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_references_become_dependencies_and_out_is_relative_to_the_file(tmp_path):
    path = write(
        tmp_path,
        '[experiment]\nout = "o"\n[[stage]]\nname = "data"\nkind = "data"\ndataset = "d"\n'
        '[[stage]]\nname = "train"\nkind = "train"\nset = ["dataset.path=${data.file}", "x=${dir}"]\n',
    )
    exp = load_experiment(path)
    assert exp.stage("train").needs == ["data"]
    assert exp.out_dir == tmp_path / "o"
    assert exp.name == "exp"


def test_yaml_files_work_like_toml(tmp_path):
    pytest.importorskip("yaml")
    path = write(
        tmp_path,
        "experiment: {name: y}\nstage:\n  - {name: train, kind: train, plugin: p, seeds: [1, 2]}\n",
        "exp.yaml",
    )
    exp = load_experiment(path)
    assert exp.stage("train").options.seeds == [1, 2]
    assert exp.out_dir == tmp_path / "experiments" / "y"


def test_references_finds_nested_names():
    assert references({"a": ["${x.y}", "${dir}", "plain"], "b": "pre-${z}-post"}) == {"x", "z"}
