"""Bad input through the CLI: one line, non-zero exit, no traceback."""

from __future__ import annotations

import pytest

from mlcore.cli.main import main


@pytest.mark.parametrize(
    "argv,code,needle",
    [
        (["run", "--plugin", "nav-rl", "--set", "model.gamma=3", "--dry-run"], 2, "model.gamma=3"),
        (["run", "--plugin", "nav-rl", "--set", "model.her=true", "--set", "model.per=true", "--dry-run"], 2, "per"),
        (["run", "--plugin", "nav-rl", "--set", "dataset.env.robot='tank'", "--dry-run"], 2, "robot"),
        (["run", "--plugin", "nav-rl", "--set", "model.curriculum_config.force_stage=9", "--dry-run"], 2, "stage"),
    ],
)
def test_config_errors_are_one_line(argv, code, needle, capsys):
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("error:")]) == 1 and needle in err[-1]
    assert not any("Traceback" in line for line in err)


def test_missing_checkpoint_and_demo_file(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nope.pt")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["data", "generate", "nav", "--out", str(tmp_path / "demos"), "--set", "demo_steps=20"]) == 0
    assert (tmp_path / "demos" / "nav_demos.npz").exists()
