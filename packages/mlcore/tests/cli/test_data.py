"""``mlcore data generate``: dataset options as flags, a default output folder, one-line errors."""

from __future__ import annotations

import attrs
import pytest

from mlcore import ComponentSpec, hookimpl
from mlcore.cli.data import option_overrides
from mlcore.cli.main import main
from mlcore.errors import ConfigError


def test_option_flags_become_overrides() -> None:
    assert option_overrides(["--size", "15", "--num-episodes=3", "--name", "a b"]) == [
        "size=15",
        "num_episodes=3",
        "name=a b",
    ]


@pytest.mark.parametrize(
    ("args", "names"),
    [(["--size"], "--size needs a value"), (["--size", "--num", "3"], "--size needs a value"), (["15"], "'15'")],
)
def test_malformed_option_flags_are_one_line_errors(args: list[str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        option_overrides(args)


class _Written:
    """A dataset that writes its own config, so the test sees what reached it."""

    def __init__(self, config):
        self.config = config

    def generate(self, out_dir):
        path = out_dir / "config.txt"
        path.write_text(f"{self.config.size} {self.config.seed}")
        return [path]


@attrs.define
class _WrittenConfig:
    size: int = 1
    seed: int = 0


class _Plugin:
    @staticmethod
    @hookimpl
    def register_datasets():
        return [ComponentSpec("written", f"{__name__}:_Written", config=f"{__name__}:_WrittenConfig")]


def test_dataset_field_given_as_a_flag_reaches_the_dataset(isolated_registry, tmp_path, monkeypatch, capsys) -> None:
    isolated_registry({"toyplug": _Plugin})
    monkeypatch.chdir(tmp_path)
    assert main(["data", "generate", "written", "--size", "15", "--seed", "3"]) == 0
    assert (tmp_path / "data" / "written" / "config.txt").read_text() == "15 3"  # default folder data/DATASET
    assert main(["data", "generate", "written", "--size=7", "--out", "here"]) == 0
    assert (tmp_path / "here" / "config.txt").read_text() == "7 0"


def test_unknown_dataset_field_is_one_line_error(isolated_registry, tmp_path, capsys) -> None:
    isolated_registry({"toyplug": _Plugin})
    code = main(["data", "generate", "written", "--out", str(tmp_path), "--no-such-field", "1"])
    err = capsys.readouterr().err
    assert code != 0
    assert "no_such_field" in err
    assert len(err.strip().splitlines()) == 1, err
