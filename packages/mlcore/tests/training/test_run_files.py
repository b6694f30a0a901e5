"""Tests of mlcore.training._run_files: a full disk, and what the stats may claim afterwards."""

from __future__ import annotations

import itertools
import json
import resource
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlcore.errors import CheckpointError
from mlcore.training import Callback, EarlyStopping
from mlcore.training._run_files import callback_keys, callback_states, restore_callback_states
from mlcore.training.checkpoint import load_checkpoint

from .conftest import TinyConfig, TinyNet

HIDDEN = 20_000  # a checkpoint of ~1 MB: weights plus Adam's two moments


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Any]:
    """``make(path, size_bytes)`` mounts a tmpfs of that size at ``path`` (skips where not permitted)."""
    mounted: list[Path] = []

    def make(path: Path, size: int) -> bool:
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, check=False
        )
        if done.returncode == 0:
            mounted.append(path)
        return done.returncode == 0

    yield make
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)


@pytest.mark.parametrize("async_checkpoint", [True, False])
def test_full_disk_is_one_line_and_stats_never_claim_a_missing_best(
    fit_tiny: Any, tmp_path: Path, small_disk: Any, async_checkpoint: bool
) -> None:
    _, _, probe = fit_tiny("probe", model=TinyNet(TinyConfig(hidden=HIDDEN)), epochs=1)
    size = (probe / "checkpoints" / "last.pt").stat().st_size
    if not small_disk(tmp_path / "full", int(size * 1.6)):
        pytest.skip("mounting a tmpfs is not permitted here (see the RLIMIT_FSIZE test)")
    # epoch 1's last.pt fits (best.pt is a hard link); epoch 2's temporary file does not
    with pytest.raises(CheckpointError) as exc:
        fit_tiny(
            "full",
            model=TinyNet(TinyConfig(hidden=HIDDEN)),
            epochs=4,
            monitor="train_loss",
            async_checkpoint=async_checkpoint,
        )
    message = str(exc.value)
    assert "\n" not in message
    assert message == f"could not write {tmp_path / 'full' / 'checkpoints' / 'last.pt'}: No space left on device"
    run_dir = tmp_path / "full"
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    stats = json.loads((run_dir / "training_stats.json").read_text())
    assert last["epoch"] == 1 and stats["epochs_run"] == 1 and stats["stopped_reason"] == "error"
    assert stats["best_epoch"] == best["epoch"] == 1
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.pt", "last.pt"]  # no temp files


def test_file_size_limit_is_one_line_and_leaves_no_claim(fit_tiny: Any, tmp_path: Path) -> None:
    """The same failure where mounting is not allowed: a per-file size limit (EFBIG)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))
    try:
        with pytest.raises(CheckpointError, match=r"could not write .*last\.pt: File too large$"):
            fit_tiny("limited", model=TinyNet(TinyConfig(hidden=HIDDEN)), epochs=2)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    run_dir = tmp_path / "limited"
    assert not (run_dir / "checkpoints" / "last.pt").exists()
    assert not (run_dir / "training_stats.json").exists()  # no epoch reached the disk: nothing is claimed
    assert list((run_dir / "checkpoints").iterdir()) == []


class Keyed(Callback):
    state_key = "mine"

    def __init__(self) -> None:
        self.loaded: dict[str, Any] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"x": 1}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loaded = state


def test_callback_keys_are_names_not_positions() -> None:
    a, b, c = EarlyStopping(), Keyed(), Keyed()
    keys = callback_keys([a, b, c, EarlyStopping()], ["early_stopping", None, None, None])
    assert keys == ["early_stopping", "mine", "mine#2", "mlcore.training.callbacks.EarlyStopping"]
    a.wait = 2
    states = callback_states([a, b], keys[:2])
    assert states == {"early_stopping": {"best": float("inf"), "wait": 2, "stopped_epoch": 0}, "mine": {"x": 1}}
    fresh = EarlyStopping()
    restore_callback_states([Keyed(), fresh], ["mine", "early_stopping"], states)
    assert fresh.wait == 2


def test_states_saved_by_position_still_load() -> None:
    """Checkpoints from before stable keys stored ``"<position>:<ClassName>"``."""
    old = {"0:GradientHistogramCallback": {}, "1:EarlyStopping": {"best": 0.5, "wait": 1, "stopped_epoch": 0}}
    es = EarlyStopping()
    restore_callback_states([Keyed(), es], ["mine", "early_stopping"], old)
    assert (es.best, es.wait) == (0.5, 1)


def test_checkpoint_payload_cost_does_not_grow_with_epochs_run(fit_tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Items converted/copied for the checkpoint of each epoch: the same at epoch 3 and at epoch 20."""
    from mlcore.training import _run_files, checkpoint

    calls = [0]

    def counting(real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            return real(*args, **kwargs)

        return wrapper

    for module in (checkpoint, _run_files):
        for name in ("plain_values", "detached_copy"):
            monkeypatch.setattr(module, name, counting(getattr(checkpoint, name)), raising=False)
    marks: list[int] = []

    class Mark(Callback):
        def on_epoch_end(self, trainer: Any, epoch: int, record: dict[str, Any]) -> None:
            marks.append(calls[0])  # between two marks: one epoch's checkpoint payload

    fit_tiny(epochs=20, async_checkpoint=True, cbs=(Mark(),))
    per_epoch = [b - a for a, b in itertools.pairwise(marks)]
    assert len(per_epoch) == 19 and per_epoch[0] > 0
    # walking the whole history every epoch would add a record's worth of items per epoch run
    assert set(per_epoch[1:]) == {per_epoch[1]}, per_epoch


def test_a_run_written_before_the_split_resumes_bit_exact(tmp_path: Path) -> None:
    """``data/run_before_split``: 2 epochs by the old trainer (positional callback keys, wait=1)."""
    import importlib.util
    import shutil

    import torch
    from torch import nn

    from mlcore.training import Trainer

    here = Path(__file__).parent / "data" / "run_before_split"
    spec = importlib.util.spec_from_file_location("make_run", here / "make_run.py")
    assert spec is not None and spec.loader is not None
    make_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_run)
    old = load_checkpoint(here / "checkpoints" / "last.pt")
    assert old["epoch"] == 2 and old["callbacks"] == {"1:EarlyStopping": {**old["callbacks"]["1:EarlyStopping"]}}
    run_dir = tmp_path / "old"
    shutil.copytree(here, run_dir)
    resumed = Trainer(make_run.config(10), device="cpu", seed=0).fit(
        make_run.model(), make_run.Data(), nn.MSELoss(), run_dir=run_dir
    )
    full = Trainer(make_run.config(10), device="cpu", seed=0).fit(
        make_run.model(), make_run.Data(), nn.MSELoss(), run_dir=tmp_path / "new"
    )
    # the early-stopping counter came back from the old key: stopped after epoch 4 like the new run
    assert resumed.stopped_reason == full.stopped_reason == "early_stopping"
    assert resumed.epochs_run == full.epochs_run == 4
    # grad_norm is a statistic over sampled steps, and the old grad_histograms sampled every step
    skip = {"seconds", "grad_norm", "grad_norm_max"}
    strip = [{k: v for k, v in r.items() if k not in skip} for r in full.history]
    got = [{k: v for k, v in r.items() if k not in skip} for r in resumed.history]
    # the fixture's epochs were computed on the machine that wrote it: another CPU's kernels round
    # differently (~1e-9 relative), so across machines the runs agree to rounding, not bit for bit;
    # a resume that lost the optimizer, the RNG (dropout) or the schedule differs by ~1e-2
    assert got[:2] == [{k: v for k, v in r.items() if k not in skip} for r in old["history"]]
    assert [r.keys() for r in got] == [r.keys() for r in strip]
    assert [r["lr"] for r in got] == [r["lr"] for r in strip]
    for mine, theirs in zip(got, strip, strict=True):
        assert mine == pytest.approx(theirs, rel=1e-6), (mine, theirs)
    a = load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "new" / "checkpoints" / "last.pt")["model"]
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-7) for k in a)
