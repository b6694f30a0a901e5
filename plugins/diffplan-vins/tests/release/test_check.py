"""check-release: every model passes on a good release; a corrupted or oversized checkpoint fails it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcore.cli.main import main
from mlcore.errors import DataError
from mlcore_diffplan_vins.release.check import check_release


def test_a_good_release_passes_with_measured_figures(release_run: Path) -> None:
    rows = check_release(release_run)
    assert [r.name for r in rows] == ["SymVIN_maze15", "VIN_maze15"] and all(r.ok for r in rows), rows
    vin = rows[1]
    ckpt = release_run / "pretrained_models" / "grid" / "VIN_maze15" / "checkpoints" / "best.pt"
    info = json.loads((ckpt.parent.parent / "VIN_maze15_info.json").read_text())
    assert vin.file_bytes == ckpt.stat().st_size and vin.parameters == 1520
    assert vin.model_bytes == 1520 * 4  # float32 parameters, no buffers
    assert vin.accuracy == vin.recorded == info["test_accuracy"]
    assert vin.peak_rss_bytes > 10_000_000  # a Python process with torch: tens of MB at least


def test_the_archive_is_checked_too(release_run: Path) -> None:
    rows = check_release(release_run / "pretrained_models.tar.gz", names=["VIN_maze15"], evaluate=False)
    assert [(r.name, r.ok, r.accuracy) for r in rows] == [("VIN_maze15", True, None)]
    with pytest.raises(DataError, match=r"no released model 'VIN_maze28'"):
        check_release(release_run, names=["VIN_maze28"])


def test_corrupted_checkpoint_fails(release_run: Path) -> None:
    ckpt = release_run / "pretrained_models" / "grid" / "VIN_maze15" / "checkpoints" / "best.pt"
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64  # same size, damaged content
    ckpt.write_bytes(bytes(data))
    rows = {r.name: r for r in check_release(release_run)}
    assert rows["SymVIN_maze15"].ok and not rows["VIN_maze15"].ok
    assert any("SHA-256 differs" in p for p in rows["VIN_maze15"].problems)


def test_changed_weights_fail_the_recorded_accuracy(release_run: Path) -> None:
    """A valid checkpoint with other weights (same size) loads, but its accuracy is not the recorded one."""
    import torch

    from mlcore.training.checkpoint import load_checkpoint, write_payload

    ckpt = release_run / "pretrained_models" / "grid" / "VIN_maze15" / "checkpoints" / "best.pt"
    payload = load_checkpoint(ckpt)
    payload.pop("path")
    payload["model"]["policy.weight"] = torch.flip(payload["model"]["policy.weight"], dims=[0])
    write_payload(ckpt, payload)
    info_file = ckpt.parent.parent / "VIN_maze15_info.json"
    info = json.loads(info_file.read_text())
    info.pop("sha256")  # an info file without a digest: only the evaluation can tell
    info_file.write_text(json.dumps(info))
    (row,) = check_release(release_run, names=["VIN_maze15"])
    assert not row.ok and any("evaluation gives accuracy" in p for p in row.problems), row.problems


def test_cli_table_json_and_exit_codes(release_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diffplan-vins", "check-release", str(release_run), "--no-evaluate"]) == 0
    out = capsys.readouterr().out
    assert "VIN_maze15" in out and "2 of 2 models pass" in out
    assert main(["diffplan-vins", "check-release", str(release_run), "--json", "--model", "VIN_maze15"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["ok"], r["parameters"]) for r in rows] == [("VIN_maze15", True, 1520)]
    # an oversized file: a limit below the checkpoint's size fails it, exit 1
    size = (release_run / "pretrained_models" / "grid" / "VIN_maze15" / "checkpoints" / "best.pt").stat().st_size
    limit = f"{(size - 1) / 1e6:.6f}"
    assert main(["diffplan-vins", "check-release", str(release_run), "--no-evaluate", "--max-mb", limit]) == 1
    out, err = capsys.readouterr()
    assert "error: 1 of 2 released models failed the check: VIN_maze15" in err
    assert "VIN_maze15" in out and f"checkpoint is {size / 1e6:.2f} MB (limit {float(limit):g} MB)" in out
    assert main(["diffplan-vins", "check-release", str(release_run / "nowhere")]) == 1
    assert "error: pretrained models not found" in capsys.readouterr().err
