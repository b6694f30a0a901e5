"""``mlcore doctor`` and ``mlcore find-batch-size`` from the command line."""

from __future__ import annotations

import json

import pytest

from mlcore.cli.main import main

from .test_run_nproc import TOYS


def test_doctor_prints_one_table_and_json(capsys) -> None:
    assert main(["doctor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["section", "item", "status", "detail"]
    assert any(line.split()[:3] == ["versions", "torch", "ok"] for line in lines)
    assert main(["doctor", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"section", "item", "status", "detail"} == set(rows[0])


@pytest.mark.slow
def test_find_batch_size_for_a_run_config(fake_site, cli, tmp_path) -> None:
    site = fake_site("toys", TOYS)
    config = tmp_path / "c.toml"
    config.write_text('[run]\nplugin = "mlcore"\npipeline = "train"\n[dataset]\nname = "toy"\nnum_samples = 64\n'
                      '[model]\nname = "toynet"\n')  # fmt: skip
    proc = cli(["find-batch-size", "-c", str(config), "--device", "cpu", "--memory-budget", "1GB", "--json"],
               pythonpath=site, env={"MLCORE_PLUGINS": "toys"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert (found["batch_size"], found["limit"]) == (48, "dataset")  # 64 samples, 25 % held out for validation


def test_find_batch_size_mistakes_are_one_line(capsys) -> None:
    assert main(["find-batch-size", "-p", "mlcore", "--pipeline", "train", "--memory-budget", "lots"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: memory_budget='lots': expected a size such as 2GB, 512MiB or a number of bytes"
    )
    assert main(["find-batch-size"]) == 2
    assert capsys.readouterr().err.strip() == "error: pass --plugin NAME (see `mlcore plugins`) or --config FILE"
