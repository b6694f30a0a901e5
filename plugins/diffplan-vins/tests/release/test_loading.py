"""load_pretrained: from a directory, a run directory and an archive; one-line errors for every mistake."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from mlcore.errors import CheckpointError, DataError
from mlcore.training.checkpoint import build_model
from mlcore_diffplan_vins.release import load_pretrained
from mlcore_diffplan_vins.release.loading import ENV_VAR, default_source


def _same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    maps = torch.zeros(2, 2, 9, 9)
    maps[:, 0, 0, :] = 1.0
    maps[:, 1, 4, 4] = 1.0
    with torch.no_grad():
        return torch.equal(a(maps), b(maps))


def test_from_directory_run_directory_and_archive(release_run: Path) -> None:
    trained = build_model(release_run / "runs" / "VIN_maze15" / "checkpoints" / "best.pt")
    root = release_run / "pretrained_models"
    for source in (release_run, root, release_run / "pretrained_models.tar.gz"):
        loaded = load_pretrained("VIN_maze15", source)
        assert not loaded.model.training
        assert type(loaded.model).__name__ == "VIN" and _same_outputs(loaded.model, trained)
        assert loaded.info["name"] == "VIN_maze15" and loaded.config["model"]["name"] == "vin"
    assert loaded.source.endswith("pretrained_models.tar.gz:pretrained_models/grid/VIN_maze15")


def test_default_source_env_var_then_cwd(release_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(release_run)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert default_source() == Path("pretrained_models")
    assert load_pretrained("SymVIN_maze15").info["algorithm"] == "SymVIN"
    shutil.rmtree(release_run / "pretrained_models")
    assert default_source() == Path("pretrained_models.tar.gz")  # only the archive is left
    assert load_pretrained("SymVIN_maze15").info["algorithm"] == "SymVIN"
    monkeypatch.setenv(ENV_VAR, str(release_run / "elsewhere"))
    with pytest.raises(DataError, match=r"pretrained models not found: .*elsewhere \(pass source=..., set MLCORE_PRE"):
        load_pretrained("SymVIN_maze15")


def test_unknown_name_lists_the_released_ones(release_run: Path) -> None:
    for source in (release_run, release_run / "pretrained_models.tar.gz"):
        with pytest.raises(
            DataError, match=r"no released model 'VIN_maze28' in .* \(released: SymVIN_maze15, VIN_maze15\)"
        ):
            load_pretrained("VIN_maze28", source)


def test_missing_archive_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"release archive not found: .*gone.tar.gz"):
        load_pretrained("VIN_maze15", tmp_path / "gone.tar.gz")


def test_corrupt_checkpoint_is_one_line(release_run: Path) -> None:
    ckpt = release_run / "pretrained_models" / "grid" / "VIN_maze15" / "checkpoints" / "best.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"checkpoint .*VIN_maze15/checkpoints/best.pt is corrupt, truncated"):
        load_pretrained("VIN_maze15", release_run)


def test_checkpoint_of_another_model_says_so(release_run: Path) -> None:
    from mlcore.training.checkpoint import load_checkpoint, write_payload

    grid = release_run / "pretrained_models" / "grid"
    vin = grid / "VIN_maze15" / "checkpoints" / "best.pt"
    shutil.copy(grid / "SymVIN_maze15" / "checkpoints" / "best.pt", vin)
    with pytest.raises(CheckpointError, match=r"holds the released model 'SymVIN_maze15', not 'VIN_maze15'"):
        load_pretrained("VIN_maze15", release_run)
    ckpt = load_checkpoint(vin)  # the same without the release name: the model name still gives it away
    ckpt.pop("path")
    ckpt["meta"].pop("release")
    write_payload(vin, ckpt)
    with pytest.raises(CheckpointError, match=r"holds model 'symvin' from plugin 'diffplan-vins', not 'vin'"):
        load_pretrained("VIN_maze15", release_run)


def test_errors_from_an_archive_name_the_archive(release_run: Path, tmp_path: Path) -> None:
    from mlcore_diffplan_vins.release.archive import pack_release

    ckpt = release_run / "pretrained_models" / "grid" / "VIN_maze15" / "checkpoints" / "best.pt"
    ckpt.write_bytes(b"garbage")
    archive = pack_release(release_run / "pretrained_models", tmp_path / "broken.tar.gz")
    with pytest.raises(CheckpointError, match=r"broken.tar.gz:pretrained_models/grid/VIN_maze15/checkpoints/best.pt"):
        load_pretrained("VIN_maze15", archive)
