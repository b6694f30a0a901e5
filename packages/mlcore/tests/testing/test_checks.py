"""Tests of the plain data and model checks (mlcore/testing/checks.py): they pass the toys and,
above all, FAIL the broken components of the toy plugin (tests/testing/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from mlcore.testing import ContractError
from mlcore.testing import checks as kit
from mlcore.testing.toys import ToyData, ToyDataConfig, ToyNet, ToyNetConfig


def test_checks_import_without_pytest():
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "from mlcore.testing import check_model_forward, first_batch, ContractError\n"
        "from mlcore.testing.toys import ToyData, ToyNet\n"
        "check_model_forward(ToyNet(), first_batch(ToyData().prepare()))\n"
        "print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_good_model_passes_every_model_check(toy, tmp_path):
    model, data, batch = toy.model_and_batch("good")
    kit.check_model_forward(model, batch)
    assert kit.check_output_shape(model, batch) is True
    assert kit.check_batch_independence(model, batch) is True
    x, y = batch
    loss_fn = toy.loss_for("good")
    with torch.no_grad():
        expected = float(((model(x) - y) ** 2).mean())
    assert kit.check_model_loss(model, batch, loss_fn) == pytest.approx(expected)
    before, after = kit.check_model_trains(model, batch, loss_fn)
    assert before == pytest.approx(expected) and after < 0.99 * before
    kit.check_example_input(model, batch)
    kit.check_checkpoint_roundtrip(
        model,
        batch,
        path=tmp_path / "c.pt",
        plugin="toy",
        model_name="good",
        model_config=toy.component_config(toy.spec("model", "good")),
        data=data,
        dataset_name="lin",
    )
    assert (tmp_path / "c.pt").is_file()


def test_model_loss_is_the_trainers_loss(toy):
    model, _, batch = toy.model_and_batch("ownloss")
    x, y = batch
    loss = kit.model_loss(model, batch, nn.MSELoss())
    with torch.no_grad():
        assert loss.dim() == 0 and float(loss) == pytest.approx(float(((model(x) - y) ** 2).mean()))

    class ThreeTuple(nn.Module):
        def forward(self, x):
            return x

        def compute_loss(self, batch, loss_fn):
            return torch.zeros(()), {}, "extra"

    with pytest.raises(ContractError, match="ThreeTuple: the loss must be a scalar tensor, got tuple"):
        kit.model_loss(ThreeTuple(), batch, None)
    with pytest.raises(ContractError, match=r"ToyNet: a model without compute_loss\(\): a batch must be"):
        kit.model_loss(ToyNet(), (x, y, y), nn.MSELoss())


def test_nan_model_fails_forward_and_loss(toy):
    model, _, batch = toy.model_and_batch("nan")
    with pytest.raises(ContractError, match="NaN or inf"):
        kit.check_model_forward(model, batch)
    with pytest.raises(ContractError, match="loss is not finite"):
        kit.check_model_loss(model, batch, toy.loss_for("nan"))
    with pytest.raises(ContractError, match="non-finite at training step 1"):
        kit.check_model_trains(model, batch, toy.loss_for("nan"))


def test_model_that_does_not_learn_fails(toy):
    model, _, batch = toy.model_and_batch("stuck")
    kit.check_model_loss(model, batch, toy.loss_for("stuck"))  # finite, has a (zero) gradient
    with pytest.raises(ContractError, match=r"does not learn: 20 Adam steps .*needed a 1% decrease"):
        kit.check_model_trains(model, batch, toy.loss_for("stuck"))


def test_checkpoint_roundtrip_catches_state_outside_the_state_dict(toy, tmp_path):
    model, data, batch = toy.model_and_batch("forgetful")
    with pytest.raises(ContractError, match="outputs differ after a checkpoint round trip"):
        kit.check_checkpoint_roundtrip(
            model,
            batch,
            path=tmp_path / "f.pt",
            plugin="toy",
            model_name="forgetful",
            model_config=toy.component_config(toy.spec("model", "forgetful")),
            data=data,
            dataset_name="lin",
        )


def test_example_input_must_match_the_data(toy):
    model, _, batch = toy.model_and_batch("badexample")
    with pytest.raises(RuntimeError, match=r"mat1 and mat2"):
        kit.check_example_input(model, batch)
    kit.check_example_input(toy.model_and_batch("good")[0], batch)


def test_dataset_checks(toy):
    kit.check_dataset(toy.build("dataset", "lin"), lambda: toy.build("dataset", "lin"))
    with pytest.raises(ContractError, match="cannot be stored in a checkpoint"):
        kit.check_dataset(toy.build("dataset", "badstate"))
    with pytest.raises(ContractError, match=r"train_set\(\) is empty"):
        kit.check_dataset(toy.build("dataset", "empty"))


# --------------------------------------------------------------------------- planted bugs of issue 9


def test_dataset_seed_check_passes_a_seeded_dataset_and_restores_the_global_rngs(toy_module):
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    kit.check_dataset_seed(lambda seed: ToyData(ToyDataConfig(num_samples=32, seed=seed)), 7)
    assert torch.equal(torch.rand(3), expected_next)


def test_dataset_that_ignores_its_seed_fails(toy_module):
    fixed = toy_module.FixedSeedData
    with pytest.raises(ContractError, match=r"FixedSeedData: seed=3 and seed=4 give the same first 4 training items"):
        kit.check_dataset_seed(lambda seed: fixed(ToyDataConfig(seed=seed)), 3)


def test_dataset_that_draws_from_the_global_rng_fails(toy_module):
    global_rng = toy_module.GlobalRngData
    with pytest.raises(ContractError, match="GlobalRngData: two builds with seed=0 give different training items"):
        kit.check_dataset_seed(lambda seed: global_rng(ToyDataConfig(seed=seed)), 0)


def test_output_that_broadcasts_through_the_loss_fails_naming_both_shapes(toy):
    model, _, batch = toy.model_and_batch("squeezed")
    kit.check_model_trains(model, batch, toy.loss_for("squeezed"))  # the bug trains: only the shape check sees it
    with pytest.raises(ContractError) as info:
        kit.check_output_shape(model, batch)
    assert str(info.value) == (
        "Squeezed: output shape (8,) differs from target shape (8, 1); an elementwise loss broadcasts "
        "them to (8, 8) (return the target's shape from forward, or pair them in compute_loss)"
    )


def test_output_shape_of_classifiers_and_of_models_owning_their_loss():
    blobs = ToyData(ToyDataConfig(target="blobs", out_features=3, num_samples=30)).prepare()
    batch = kit.first_batch(blobs, 6)
    assert kit.check_output_shape(ToyNet(ToyNetConfig(out_features=3)), batch) is True  # (6, 3) logits, (6,) labels
    with pytest.raises(ContractError, match=r"output shape \(5, 3\) and label shape \(6,\) differ in the batch"):

        class DropsOne(ToyNet):
            def forward(self, x):
                return super().forward(x)[1:]

        kit.check_output_shape(DropsOne(ToyNetConfig(out_features=3)), batch)

    class Owns(ToyNet):
        def compute_loss(self, batch, loss_fn):
            return loss_fn(self(batch[0]).squeeze(-1), batch[1].squeeze(-1))

    regression = kit.first_batch(ToyData().prepare(), 4)
    assert kit.check_output_shape(Owns(), regression) is False


def test_model_that_mixes_samples_fails_in_eval_mode(toy):
    model, _, batch = toy.model_and_batch("batchcentred")
    kit.check_model_loss(model, batch, toy.loss_for("batchcentred"))  # paired with a plugin loss: fine
    with pytest.raises(ContractError, match=r"BatchCentred mixes samples across the batch: .* samples \[1, 2, 3"):
        kit.check_batch_independence(model, batch)
    assert not model.training


def test_recurrent_layer_over_the_batch_dimension_fails():
    class SeqModel(nn.Module):  # (N, T, F) inputs into an LSTM that expects (T, N, F): a classic mix-up
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4)
            self.head = nn.Linear(4, 1)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    torch.manual_seed(0)
    batch = (torch.randn(5, 6, 3), torch.randn(5, 1))
    with pytest.raises(ContractError, match=r"SeqModel mixes samples .* samples \[1, 2, 3, 4\]"):
        kit.check_batch_independence(SeqModel(), batch)
    fixed = SeqModel()
    fixed.lstm.batch_first = True
    assert kit.check_batch_independence(fixed, batch) is True


def test_batch_independence_changes_integer_and_nested_inputs():
    class Embed(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 2)

        def forward(self, inputs):
            return self.emb(inputs["tokens"]).sum(1) + inputs["scale"]

    tokens = torch.tensor([[1, 2], [3, 4], [5, 6]])
    batch = ({"tokens": tokens, "scale": torch.ones(3, 1)}, torch.zeros(3, 2))
    assert kit.check_batch_independence(Embed(), batch) is True
    assert torch.equal(batch[0]["tokens"], tokens), "the caller's batch is left alone"

    class Pooled(Embed):
        def forward(self, inputs):
            return super().forward(inputs).mean(0, keepdim=True).expand(3, 2)

    with pytest.raises(ContractError, match="Pooled mixes samples"):
        kit.check_batch_independence(Pooled(), batch)
    single = ({"tokens": tokens[:1], "scale": torch.ones(1, 1)}, torch.zeros(1, 2))
    assert kit.check_batch_independence(Pooled(), single) is False


def test_example_input_of_a_structured_batch():
    """A model fed structured batches (e.g. torch-geometric) gives its batch size by ``batch_size``."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("kit_structured", Path(__file__).with_name("structured.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.RowModel()
    kit.check_example_input(model, (mod.NodeBatch(2), torch.zeros(6, 2)))

    class Wrong(mod.RowModel):
        def example_input(self, batch_size=2):
            return mod.NodeBatch(batch_size + 1)

    with pytest.raises(ContractError, match=r"example_input\(1\) has batch_size 2, not 1"):
        kit.check_example_input(Wrong())
