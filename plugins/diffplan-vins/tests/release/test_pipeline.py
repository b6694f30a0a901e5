"""The release pipeline: pre-flight errors, skipping packaged entries, resuming an entry's run, the quick profile."""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path

import pytest

from mlcore.api import run
from mlcore.errors import ConfigError
from mlcore.registry import get_registry
from mlcore_diffplan_vins.release.pipeline import ReleaseConfig, ReleasePipeline
from mlcore_diffplan_vins.release.table import RELEASE_TABLE, entry_named

from .conftest import TINY_SINGLE, build_release


def _mtimes(directory: Path) -> dict[str, int]:
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns for p in sorted(directory.rglob("*")) if p.is_file()}


def test_preflight_errors_name_the_entry_and_write_nothing(tmp_path: Path) -> None:
    cases = [
        ({"entries": ["VIN_maze99"]}, r"release entry 'VIN_maze99' is not in the release table"),
        ({"overrides": {"singel": ["trainer.epochs=1"]}}, r"overrides.singel: no release entry is trained by pipeline"),
        (
            {"entries": ["VIN_maze15"], "overrides": {"single": ["dataset.sise=9"]}},
            r"release entry VIN_maze15: .*dataset.sise",
        ),
    ]
    for i, (config, message) in enumerate(cases):
        with pytest.raises(ConfigError, match=message):
            run("diffplan-vins", pipeline="release", profile="quick", config=config, out=tmp_path / str(i))
        assert not (tmp_path / str(i) / "config.toml").exists()


def test_graph_entries_need_graph_single() -> None:
    if "graph-single" in {s.name for s in get_registry().pipelines("diffplan-vins")}:
        pytest.skip("graph-single is installed")
    pipe = ReleasePipeline(ReleaseConfig(entries=["MP-VIN_maze15"]))
    with pytest.raises(ConfigError, match=r"'MP-VIN_maze15' is trained by pipeline 'graph-single', which plugin"):
        pipe.selected()
    assert {e.pipeline for e in ReleasePipeline(ReleaseConfig()).selected()} == {"single"}


def test_overrides_order_entry_then_quick_sizes_then_pipeline() -> None:
    entry = entry_named("SymVIN_maze15")
    pipe = ReleasePipeline(ReleaseConfig(quick_sizes=True, overrides={"single": ["model.q_channels=2"]}))
    assert pipe.overrides_of(entry) == [*entry.overrides, *entry.quick, "model.q_channels=2"]
    assert ReleasePipeline(ReleaseConfig()).overrides_of(entry) == list(entry.overrides)


def test_rerun_skips_packaged_entries_and_repackages_without_retraining(release_run: Path) -> None:
    config = {"entries": ["VIN_maze15", "SymVIN_maze15"], "overrides": {"single": TINY_SINGLE}}
    before = _mtimes(release_run / "runs")
    models_before = _mtimes(release_run / "pretrained_models" / "grid")
    run("diffplan-vins", pipeline="release", profile="quick", config=config, out=release_run, progress=False)
    assert _mtimes(release_run / "runs") == before  # nothing retrained
    assert _mtimes(release_run / "pretrained_models" / "grid") == models_before  # nothing repackaged
    # a packaging step killed half way: the model directory has no info file
    info = release_run / "pretrained_models" / "grid" / "VIN_maze15" / "VIN_maze15_info.json"
    old = json.loads(info.read_text())
    info.unlink()
    run("diffplan-vins", pipeline="release", profile="quick", config=config, out=release_run, progress=False)
    runs_after = _mtimes(release_run / "runs")
    assert {k: v for k, v in runs_after.items() if "checkpoints" in k} == {
        k: v for k, v in before.items() if "checkpoints" in k
    }
    new = json.loads(info.read_text())
    assert new["sha256"] == old["sha256"] and new["test_accuracy"] == old["test_accuracy"]
    with tarfile.open(release_run / "pretrained_models.tar.gz") as tar:
        assert "pretrained_models/grid/VIN_maze15/VIN_maze15_info.json" in tar.getnames()


def test_an_interrupted_entry_run_resumes_through_the_core(tmp_path: Path) -> None:
    """An entry whose run stopped after epoch 1 of 2 continues from its last.pt (the first epoch is kept)."""
    out = tmp_path / "rel"
    tiny = [*TINY_SINGLE, "trainer.epochs=2"]
    pipe = ReleasePipeline(ReleaseConfig(entries=["VIN_maze15"], quick_sizes=True, overrides={"single": tiny}))
    entry = entry_named("VIN_maze15")
    first = [*pipe.overrides_of(entry)[:-1], "trainer.epochs=1"]  # the same run, stopped after one epoch
    run(
        "diffplan-vins",
        pipeline="single",
        profile="quick",
        overrides=first,
        seed=42,
        device="cpu",
        out=out / "runs" / entry.name,
    )
    stats = out / "runs" / entry.name / "training_stats.json"
    epoch1 = json.loads(stats.read_text())["history"][0]
    time.sleep(0.01)
    build_release(out, ["VIN_maze15"], overrides={"single": tiny})
    history = json.loads(stats.read_text())["history"]
    assert len(history) == 2 and history[0] == epoch1
    info = json.loads((out / "pretrained_models" / "grid" / "VIN_maze15" / "VIN_maze15_info.json").read_text())
    assert info["epochs"] == 2 and info["final_loss"]["train"] == history[1]["train_loss"]


@pytest.mark.slow
def test_quick_release_end_to_end(tmp_path: Path) -> None:
    """The quick profile over every installed entry: trained, packaged, checked, packed."""
    start = time.perf_counter()
    result = run("diffplan-vins", pipeline="release", profile="quick", out=tmp_path / "rel", progress=False)
    seconds = time.perf_counter() - start
    installed = {s.name for s in get_registry().pipelines("diffplan-vins")}
    expected = [e for e in RELEASE_TABLE if e.pipeline in installed]
    assert result.metrics["models"] == len(expected) == result.metrics["check_passed"]
    check = json.loads((tmp_path / "rel" / "check.json").read_text())
    assert [r["name"] for r in check] == sorted(e.name for e in expected) and all(r["ok"] for r in check)
    assert all(r["file_bytes"] < 10_000_000 for r in check)
    with tarfile.open(tmp_path / "rel" / "pretrained_models.tar.gz") as tar:
        names = set(tar.getnames())
    for e in expected:
        assert f"pretrained_models/{e.category}/{e.name}/checkpoints/best.pt" in names
    readme = (tmp_path / "rel" / "pretrained_models" / "README.md").read_text()
    assert all(f"`{e.name}`" in readme for e in expected)
    print(f"quick release of {len(expected)} models: {seconds:.0f} s")
