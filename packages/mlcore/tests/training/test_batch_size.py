"""The batch-size finder: doubling, backing off, the CPU memory measure, and its one-line errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mlcore.errors import ConfigError, MlcoreError
from mlcore.testing.toys import ToyData, ToyDataConfig, ToyNet, ToyNetConfig
from mlcore.training import batch_size as bs
from mlcore.training.batch_size import find_batch_size, parse_memory, step_memory


def test_step_memory_counts_parameters_gradients_adam_state_activations_and_batch() -> None:
    torch.manual_seed(0)
    model = nn.Linear(10, 20, bias=False)  # 200 float32 weights = 800 bytes
    module = bs.LossModule(model, nn.MSELoss())
    batch = (torch.randn(8, 10), torch.randn(8, 20))  # 320 + 640 bytes
    optimizer = torch.optim.Adam(model.parameters())
    used = step_memory(module, batch, optimizer)
    weights, grads, adam = 800, 800, 800 * 2 + 4  # Adam: exp_avg, exp_avg_sq and a 0-d step (float32)
    # autograd saves the input (already counted with the batch), the output and the target for MSE
    saved_output = 8 * 20 * 4
    assert used == weights + grads + adam + (320 + 640) + saved_output


def test_doubles_then_backs_off_to_the_largest_size_within_the_budget() -> None:
    data = ToyData(ToyDataConfig(num_samples=4000, val_fraction=0.0))
    model = ToyNet(ToyNetConfig(hidden=64))
    probe = {n: step_memory(bs.LossModule(model, nn.MSELoss()), next(iter(
        torch.utils.data.DataLoader(data.prepare().train_set(), batch_size=n))), torch.optim.Adam(model.parameters()))
        for n in (100, 101)}  # fmt: skip
    per_sample = probe[101] - probe[100]
    budget = probe[100] + per_sample * 200  # exactly 300 samples fit
    before = {k: v.clone() for k, v in model.state_dict().items()}
    found = find_batch_size(model, data, nn.MSELoss(), device="cpu", memory_budget=budget)
    assert found.batch_size == 300 and found.limit == "memory"
    sizes = [t.batch_size for t in found.trials]
    assert sizes[:9] == [2, 4, 8, 16, 32, 64, 128, 256, 512]  # doubling until 512 does not fit
    assert all(t.fits == (t.batch_size <= 300) for t in found.trials)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # weights restored


def test_stops_at_the_dataset_size_and_at_max_batch_size() -> None:
    data = ToyData(ToyDataConfig(num_samples=40, val_fraction=0.0))
    found = find_batch_size(ToyNet(ToyNetConfig()), data, nn.MSELoss(), device="cpu", memory_budget="1GB")
    assert (found.batch_size, found.limit) == (40, "dataset")
    assert [t.batch_size for t in found.trials] == [2, 4, 8, 16, 32, 40]
    capped = find_batch_size(ToyNet(ToyNetConfig()), data, nn.MSELoss(), device="cpu", max_batch_size=10)
    assert (capped.batch_size, capped.limit) == (10, "max_batch_size")


def test_an_out_of_memory_error_counts_as_not_fitting(monkeypatch: pytest.MonkeyPatch) -> None:
    real = bs.step_memory

    def oom_above_50(module, batch, optimizer):  # what the allocator raises when memory runs out
        if batch[0].shape[0] > 50:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")
        return real(module, batch, optimizer)

    monkeypatch.setattr(bs, "step_memory", oom_above_50)
    data = ToyData(ToyDataConfig(num_samples=500, val_fraction=0.0))
    found = find_batch_size(ToyNet(ToyNetConfig()), data, nn.MSELoss(), device="cpu", memory_budget="1GB")
    assert found.batch_size == 50 and found.limit == "memory"
    assert "out of memory" in found.trials[-1].reason or found.trials[-1].fits


def test_nothing_fits_and_bad_budgets_are_one_line_errors() -> None:
    data = ToyData(ToyDataConfig(num_samples=40, val_fraction=0.0))
    with pytest.raises(MlcoreError, match=r"batch size 2 does not fit on cpu \(needs .* > budget 10 B\)"):
        find_batch_size(ToyNet(ToyNetConfig()), data, nn.MSELoss(), device="cpu", memory_budget=10)
    assert parse_memory("2GB") == 2 * 10**9 and parse_memory("512MiB") == 512 * 2**20 and parse_memory(1e3) == 1000
    with pytest.raises(ConfigError, match=r"memory_budget='lots': expected a size such as 2GB"):
        parse_memory("lots")
    with pytest.raises(ConfigError, match=r"max_batch_size=1: must be at least init=2"):
        find_batch_size(ToyNet(ToyNetConfig()), data, nn.MSELoss(), device="cpu", max_batch_size=1)
