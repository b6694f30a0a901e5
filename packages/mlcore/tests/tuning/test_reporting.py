"""While a search is active the core trainer reports every epoch; a reporter can end the run."""

from __future__ import annotations

import pytest
from torch import nn

from mlcore.testing.toys import ToyData, ToyDataConfig, ToyNet, ToyNetConfig
from mlcore.training import Trainer, TrainerConfig
from mlcore.tuning.reporting import active, report, reporting


class Collect:
    def __init__(self, stop_at: int = 0) -> None:
        self.seen: list[tuple[int, float]] = []
        self.stop_at = stop_at

    def report(self, record, step):
        self.seen.append((step, record["val_loss"]))
        if step == self.stop_at:
            raise RuntimeError(f"pruned at {step}")


def _fit(tmp_path, epochs=3):
    data = ToyData(ToyDataConfig(num_samples=64)).prepare()
    cfg = TrainerConfig(epochs=epochs, batch_size=16, plot=False, trackers=[], progress=False)
    return Trainer(cfg, device="cpu", seed=0).fit(ToyNet(ToyNetConfig()), data, nn.MSELoss(), run_dir=tmp_path)


def test_every_epoch_is_reported_while_a_search_is_active(tmp_path):
    collect = Collect()
    with reporting(collect):
        assert active()
        result = _fit(tmp_path)
    assert not active()
    assert collect.seen == [(h["epoch"], h["val_loss"]) for h in result.history]
    assert [s for s, _ in collect.seen] == [1, 2, 3]


def test_nothing_is_reported_outside_a_search(tmp_path):
    collect = Collect()
    _fit(tmp_path)
    report({"val_loss": 1.0}, 1)  # a no-op without a reporter
    assert collect.seen == []


def test_a_reporter_raising_ends_training_at_that_epoch(tmp_path):
    collect = Collect(stop_at=2)
    with reporting(collect), pytest.raises(RuntimeError, match="pruned at 2"):
        _fit(tmp_path, epochs=5)
    assert [s for s, _ in collect.seen] == [1, 2]


def test_warm_start_weights_are_loaded_before_the_first_epoch(tmp_path):
    """PBT continues a trial from another's weights: the trainer starts from them, not from its own init."""
    import torch

    from mlcore.tuning.reporting import current_trainer, warm_start

    donor = ToyNet(ToyNetConfig())
    with torch.no_grad():
        for p in donor.parameters():
            p.fill_(0.5)
    seen = {}

    class Peek:
        def report(self, record, step):
            seen[step] = [p.detach().clone() for p in current_trainer().model.parameters()]

    data = ToyData(ToyDataConfig(num_samples=64)).prepare()
    cfg = TrainerConfig(epochs=1, batch_size=16, lr=1e-12, plot=False, trackers=[], progress=False)
    warm_start(donor.state_dict())
    with reporting(Peek()):
        Trainer(cfg, device="cpu", seed=0).fit(ToyNet(ToyNetConfig()), data, nn.MSELoss(), run_dir=tmp_path)
    assert all(torch.allclose(p, torch.full_like(p, 0.5), atol=1e-6) for p in seen[1])
    assert current_trainer() is None
    with reporting(Peek()):  # used once: the next trial starts from its own init
        Trainer(cfg, device="cpu", seed=0).fit(ToyNet(ToyNetConfig()), data, nn.MSELoss(), run_dir=tmp_path / "b")
    assert not all(torch.allclose(p, torch.full_like(p, 0.5), atol=1e-6) for p in seen[1])
