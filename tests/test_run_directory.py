"""Run directories with the real trainer: extend a finished run, no-op resume, suggested commands, bad checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "examples" / "configs" / "train_trc.toml"
SMALL = [
    *("--set", "dataset.num_samples=128", "--set", "dataset.test_num_samples=32", "--set", "trainer.trackers=[]"),
    *("--set", "trainer.callbacks=[]", "--set", "evaluator.timing_problems=4", "--no-progress"),
]

pytestmark = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import mlcore_trc_control"], capture_output=True).returncode != 0,
    reason="needs the trc-control plugin",
)


def mlcore(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLCORE_PLUGINS": "trc-control", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mlcore", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def epochs(run: Path) -> int:
    return len(json.loads((run / "training_stats.json").read_text())["history"])


@pytest.mark.slow
def test_extend_resume_noop_and_every_suggested_command(tmp_path):
    run = tmp_path / "run"
    first = mlcore("train", "--config", CONFIG, "--out", run, "--set", "trainer.epochs=2", *SMALL, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert epochs(run) == 2
    # extend through --out with more epochs: resumes from last.pt, does not start over
    more = mlcore("train", "--config", CONFIG, "--out", run, "--set", "trainer.epochs=3", *SMALL, cwd=tmp_path)
    assert more.returncode == 0, more.stderr[-2000:]
    assert "resumed from" in more.stderr and epochs(run) == 3
    # extend through --resume
    resumed = mlcore("run", "--resume", run, "--set", "trainer.epochs=4", "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert epochs(run) == 4
    summary = (run / "summary.json").read_bytes()
    # nothing left to train: summary.json keeps the training session's figures
    noop = mlcore("run", "--resume", run, "--no-progress", cwd=tmp_path)
    assert noop.returncode == 0, noop.stderr[-2000:]
    assert "nothing left to train" in noop.stderr and (run / "summary.json").read_bytes() == summary
    # a real change is refused, and the command the message suggests then works
    refused = mlcore("run", "--resume", run, "--set", "model.size=medium", cwd=tmp_path)
    assert refused.returncode == 2
    line = refused.stderr.strip().splitlines()[-1]
    assert "model.size: 'small' -> 'medium'" in line and f"`mlcore run --resume {run}`" in line
    suggested = line.split("`")[1].split()
    assert suggested[:3] == ["mlcore", "run", "--resume"]
    follow = mlcore(*suggested[1:], "--no-progress", cwd=tmp_path)
    assert follow.returncode == 0, follow.stderr[-2000:]


@pytest.mark.slow
def test_crafted_checkpoint_metadata_is_refused_before_allocation(tmp_path):
    import torch

    run = tmp_path / "run"
    res = mlcore("train", "--config", CONFIG, "--out", run, "--set", "trainer.epochs=1", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    # evaluating into a run directory that a run still holds is refused in one line, then works
    from mlcore.runs import RunLock

    with RunLock(run):
        busy = mlcore("evaluate", "--checkpoint", run / "checkpoints" / "last.pt", cwd=tmp_path)
    assert busy.returncode == 1 and busy.stderr.count("\n") == 1, busy.stderr
    assert f"pid {os.getpid()}" in busy.stderr and not (run / "evaluation" / "metrics.json").exists()
    free = mlcore("evaluate", "--checkpoint", run / "checkpoints" / "last.pt", cwd=tmp_path)
    assert free.returncode == 0 and (run / "evaluation" / "metrics.json").is_file(), free.stderr
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    ckpt["meta"]["components"]["dataset"]["config"]["num_samples"] = 10**9
    crafted = tmp_path / "crafted.pt"
    torch.save(ckpt, crafted)
    for cmd in (["evaluate", "--checkpoint", crafted], ["export", "--checkpoint", crafted, "-f", "torchscript"]):
        out = mlcore(*cmd, cwd=tmp_path)
        assert out.returncode == 1, out.stderr
        assert out.stderr.strip() == (
            f"error: {crafted}: checkpoint metadata dataset.num_samples=1000000000 is over the limit 100000000; "
            "refusing to build from it"
        )
