"""DDP: the trainer launched by torchrun with 2 gloo processes on CPU (slow: spawns interpreters)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from torch import nn
    from mlcore.testing.toys import ToyData, ToyDataConfig, ToyNet, ToyNetConfig
    from mlcore.training import Trainer, TrainerConfig

    torch.set_num_threads(1)
    torch.manual_seed(int(os.environ["RANK"]))  # different init per rank: DDP must broadcast rank 0's
    model = ToyNet(ToyNetConfig(hidden=16))
    cfg = TrainerConfig(epochs=3, batch_size=8, lr=0.01, scheduler="none", trackers=["tensorboard"], callbacks=[],
                        plot=True, progress=False)
    run_dir = sys.argv[1]
    data = ToyData(ToyDataConfig(num_samples=128))
    result = Trainer(cfg, device="cpu", seed=0).fit(model, data, nn.MSELoss(), run_dir=run_dir)
    rank = os.environ["RANK"]
    torch.save(model.state_dict(), os.path.join(sys.argv[2], f"weights{rank}.pt"))
    with open(os.path.join(sys.argv[2], f"result{rank}.json"), "w") as fh:
        json.dump({"history": result.history, "reason": result.stopped_reason}, fh)
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_torchrun_two_gloo_processes(tmp_path: Path) -> None:
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT, encoding="utf-8")
    run_dir, out = tmp_path / "run", tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR")}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        str(run_dir),
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((out / "result0.json").read_text())
    r1 = json.loads((out / "result1.json").read_text())
    assert r0["reason"] == r1["reason"] == "completed"
    # losses are reduced over both ranks: every rank sees the same history
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in r0["history"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in r1["history"]]
    assert r0["history"][-1]["train_loss"] < r0["history"][0]["train_loss"]
    w0, w1 = torch.load(out / "weights0.pt"), torch.load(out / "weights1.pt")
    assert all(torch.equal(w0[k], w1[k]) for k in w0)  # gradients were synchronised
    # only rank 0 wrote the run files
    assert (run_dir / "checkpoints" / "last.pt").is_file() and (run_dir / "training_curves.png").is_file()
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1
    stats = json.loads((run_dir / "training_stats.json").read_text())
    assert stats["epochs_run"] == 3
