"""``mlcore run --nproc 2``: DDP on 2 gloo processes matches 1 process on the same global batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

#: The toy data and model of the kit, registered so the generic ``train`` pipeline can use them.
TOYS = """
from mlcore import ComponentSpec, hookimpl

@hookimpl
def register_datasets():
    return [ComponentSpec("toy", "mlcore.testing.toys:ToyData", "mlcore.testing.toys:ToyDataConfig", summary="toy")]

@hookimpl
def register_models():
    return [ComponentSpec("toynet", "mlcore.testing.toys:ToyNet", "mlcore.testing.toys:ToyNetConfig", summary="toy")]
"""

#: Full-batch training: one process takes all 72 training samples per step, each of two DDP
#: processes its 36 (DistributedSampler), so every step sees the same global batch.
CONFIG = """
[run]
plugin = "mlcore"
pipeline = "train"
[dataset]
name = "toy"
num_samples = 96
val_fraction = 0.25
[model]
name = "toynet"
hidden = 16
[trainer]
epochs = 25
lr = 0.02
scheduler = "none"
trackers = []
plot = false
[evaluator]
name = "regression"
"""


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_nproc_2_matches_one_process_on_the_same_global_batch(fake_site, cli, tmp_path: Path) -> None:
    site = fake_site("toys", TOYS)
    config = tmp_path / "train.toml"
    config.write_text(CONFIG)
    env = {"MLCORE_PLUGINS": "toys", "OMP_NUM_THREADS": "1"}
    one = cli(["run", "-c", str(config), "--set", "trainer.batch_size=72", "--threads", "1", "--out",
               str(tmp_path / "one")], pythonpath=site, env=env)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    two = cli(["run", "-c", str(config), "--set", "trainer.batch_size=36", "--threads", "1", "--nproc", "2",
               "--out", str(tmp_path / "two")], pythonpath=site, env=env)  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("run directory:") == 1  # rank 0 speaks for both

    def val_losses(run: str) -> list[float]:
        stats = json.loads((tmp_path / run / "training_stats.json").read_text())
        return [r["val_loss"] for r in stats["history"]]

    single, ddp = val_losses("one"), val_losses("two")
    assert len(single) == len(ddp) == 25
    assert single[-1] < 0.5 * single[0]  # it learned: not a comparison of two untrained models
    for a, b in zip(single, ddp, strict=True):  # every epoch within 1 %
        assert abs(a - b) <= 0.01 * a, (single, ddp)
    # only rank 0 wrote the run files: one "running" line in run.log, one completed summary
    log = (tmp_path / "two" / "run.log").read_text()
    assert log.count("running mlcore/train") == 1
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["status"] == "completed"
