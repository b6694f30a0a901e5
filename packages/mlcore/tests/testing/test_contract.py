"""Tests of the conformance kit (mlcore/testing/contract.py): it passes good components and,
above all, FAILS broken ones — a model with a NaN loss, one that cannot learn, one whose
checkpoint does not round-trip, an evaluator that forgets a metric, a pipeline without profiles.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from mlcore.registry import Registry, set_registry
from mlcore.testing import ContractError, PluginContract
from mlcore.testing import contract as kit

pytest_plugins = ("pytester",)

TOY_MODULE = "mlcore_toy_contract_plugin"

TOY_SOURCE = '''
"""A toy plugin with good and deliberately broken components."""
import attrs
import torch
from torch import nn
from torch.utils.data import TensorDataset

from mlcore import ComponentSpec, hookimpl
from mlcore.data import DataModule
from mlcore.evaluation import Evaluator

MLCORE_API = ">=1.0,<2"
M = __name__


@attrs.define
class LinConfig:
    num_samples: int = 64


class LinData(DataModule):
    def setup(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(self.config.num_samples, 3, generator=g)
        y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
        self.scale = float(y.std())
        self._train, self._val = self.split(TensorDataset(x, y / self.scale), [0.75, 0.25])

    def train_set(self):
        return self._train

    def val_set(self):
        return self._val

    def state_dict(self):
        return {"scale": self.scale}

    def load_state_dict(self, state):
        self.restored = state


class BadStateData(LinData):
    def state_dict(self):
        return {"scale": object()}


class EmptyData(LinData):
    def train_set(self):
        return TensorDataset(torch.zeros(0, 3), torch.zeros(0, 1))


@attrs.define
class NetConfig:
    hidden: int = 8


class Good(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, config.hidden), nn.Tanh(), nn.Linear(config.hidden, 1))

    def forward(self, x):
        return self.net(x)

    def example_input(self, batch_size=2):
        return torch.randn(batch_size, 3)


class NaNModel(Good):
    def forward(self, x):
        return self.net(x) * float("nan")


class Stuck(Good):
    """Gradients never reach the weights that matter: the loss cannot go down."""

    def forward(self, x):
        return self.net(x).detach() + 0.0 * self.net[0].bias.sum()


class Forgetful(Good):
    """Depends on a random non-persistent buffer, so a reloaded copy answers differently."""

    def __init__(self, config):
        super().__init__(config)
        self.register_buffer("shift", torch.randn(1), persistent=False)

    def forward(self, x):
        return self.net(x) + self.shift


class BadExample(Good):
    def example_input(self, batch_size=2):
        return torch.randn(batch_size, 5)


class OwnLoss(Good):
    """Owns its loss, returning extra logged values."""

    def compute_loss(self, batch, loss_fn):
        x, y = batch
        loss = loss_fn(self(x), y)
        return loss, {"half": float(loss) / 2}


class GoodLoss(nn.Module):
    def forward(self, pred, target):
        return ((pred - target) ** 2).mean()


class VectorLoss(nn.Module):
    def forward(self, pred, target):
        return (pred - target) ** 2


class GoodEval(Evaluator):
    metrics = ("mse",)

    def compute(self, predictions, targets):
        return {"mse": ((predictions - targets) ** 2).mean()}


class ForgetsMetric(Evaluator):
    metrics = ("mse", "mae")

    def evaluate(self, model, data, *, device="cpu", out_dir=None):
        return {"mse": 0.1}


@attrs.define
class PipeConfig:
    epochs: int = 1


class Pipe:
    def __init__(self, config):
        self.config = config


@hookimpl
def register_datasets():
    return [
        ComponentSpec("lin", f"{M}:LinData", f"{M}:LinConfig", summary="linear data"),
        ComponentSpec("badstate", f"{M}:BadStateData", f"{M}:LinConfig", summary="unsaveable state"),
        ComponentSpec("empty", f"{M}:EmptyData", f"{M}:LinConfig", summary="no training data"),
    ]


@hookimpl
def register_models():
    spec = lambda name, cls: ComponentSpec(name, f"{M}:{cls}", f"{M}:NetConfig", summary=cls, extras={"dataset": "lin"})
    return [spec("good", "Good"), spec("nan", "NaNModel"), spec("stuck", "Stuck"), spec("forgetful", "Forgetful"),
            spec("badexample", "BadExample"), spec("ownloss", "OwnLoss")]


@hookimpl
def register_losses():
    return [ComponentSpec("goodloss", f"{M}:GoodLoss", summary="mse"),
            ComponentSpec("vectorloss", f"{M}:VectorLoss", summary="not reduced")]


@hookimpl
def register_evaluators():
    return [ComponentSpec("goodeval", f"{M}:GoodEval", summary="mse", extras={"model": "good"}),
            ComponentSpec("forgets", f"{M}:ForgetsMetric", summary="forgets mae", extras={"model": "good"})]


@hookimpl
def register_pipelines():
    return [
        ComponentSpec("pipe", f"{M}:Pipe", f"{M}:PipeConfig", summary="ok",
                      profiles={"quick": {"epochs": 1}, "full": {"epochs": 50}}),
        ComponentSpec("noprofiles", f"{M}:Pipe", f"{M}:PipeConfig", summary="no full", profiles={"quick": {}}),
        ComponentSpec("badprofile", f"{M}:Pipe", f"{M}:PipeConfig", summary="typo",
                      profiles={"quick": {"epochz": 1}, "full": {"epochs": "many"}}),
    ]
'''

CONTRACT_TESTS = """
from mlcore.testing import PluginContract


class TestToy(PluginContract):
    plugin = "toy"
    config_overrides = {"dataset/lin": {"num_samples": 48}}
    skip = {"test_model_trains[forgetful]": "tested elsewhere"}


class TestCore(PluginContract):
    plugin = "mlcore"
    trainer_models = {"supervised": "good"}
    evaluator_models = {"regression": "good"}
    skip = {"evaluator/classification": "no classifier in the toy plugin"}
"""


@pytest.fixture(scope="module")
def toy_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    folder = tmp_path_factory.mktemp("toy")
    (folder / f"{TOY_MODULE}.py").write_text(textwrap.dedent(TOY_SOURCE), encoding="utf-8")
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(TOY_MODULE)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(TOY_MODULE, None)


@pytest.fixture
def toy_registry(toy_module: object) -> Iterator[Registry]:
    reg = Registry.from_modules({"toy": toy_module})
    assert reg.plugins["toy"].status == "ok", reg.plugins["toy"].reason
    restore = set_registry(reg)
    try:
        yield reg
    finally:
        restore()


class Toy(PluginContract):
    """Direct use of the kit's building blocks (not collected: no Test prefix)."""

    plugin = "toy"
    config_overrides: ClassVar = {"dataset/lin": {"num_samples": 48}}


# --------------------------------------------------------------------------- the checks, called directly


def test_good_model_passes_every_model_check(toy_registry, tmp_path):
    toy = Toy()
    model, data, batch = toy.model_and_batch("good")
    kit.check_model_forward(model, batch)
    assert kit.check_model_loss(model, batch, toy.loss_for("good")) > 0
    before, after = kit.check_model_trains(model, batch, toy.loss_for("good"))
    assert after < 0.99 * before
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


def test_nan_model_fails_forward_and_loss(toy_registry):
    toy = Toy()
    model, _, batch = toy.model_and_batch("nan")
    with pytest.raises(ContractError, match="NaN or inf"):
        kit.check_model_forward(model, batch)
    with pytest.raises(ContractError, match="loss is not finite"):
        kit.check_model_loss(model, batch, toy.loss_for("nan"))
    with pytest.raises(ContractError, match="non-finite at training step 1"):
        kit.check_model_trains(model, batch, toy.loss_for("nan"))


def test_model_that_does_not_learn_fails(toy_registry):
    toy = Toy()
    model, _, batch = toy.model_and_batch("stuck")
    kit.check_model_loss(model, batch, toy.loss_for("stuck"))  # finite, has a (zero) gradient
    with pytest.raises(ContractError, match=r"does not learn: 20 Adam steps .*needed a 1% decrease"):
        kit.check_model_trains(model, batch, toy.loss_for("stuck"))


def test_checkpoint_roundtrip_catches_state_outside_the_state_dict(toy_registry, tmp_path):
    toy = Toy()
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


def test_example_input_must_match_the_data(toy_registry):
    toy = Toy()
    model, _, batch = toy.model_and_batch("badexample")
    with pytest.raises(Exception, match=r"mat1 and mat2|shape"):
        kit.check_example_input(model, batch)


def test_dataset_checks(toy_registry):
    toy = Toy()
    kit.check_dataset(toy.build("dataset", "lin"), lambda: toy.build("dataset", "lin"))
    with pytest.raises(ContractError, match="cannot be stored in a checkpoint"):
        kit.check_dataset(toy.build("dataset", "badstate"))
    with pytest.raises(ContractError, match="train_set\\(\\) is empty"):
        kit.check_dataset(toy.build("dataset", "empty"))


def test_loss_checks(toy_registry):
    toy = Toy()
    pred, target = torch.randn(4, 2), torch.randn(4, 2)
    assert kit.check_loss(toy.build("loss", "goodloss"), pred.clone(), target) > 0
    with pytest.raises(ContractError, match="must return a scalar tensor"):
        kit.check_loss(toy.build("loss", "vectorloss"), pred.clone(), target)


def test_evaluator_checks(toy_registry, tmp_path):
    toy = Toy()
    model, data = toy.trained_model("good")
    metrics = kit.check_evaluator(toy.build("evaluator", "goodeval"), model, data, tmp_path / "a")
    assert metrics["mse"] >= 0 and (tmp_path / "a" / "metrics.json").is_file()
    with pytest.raises(ContractError, match=r"did not return declared metrics \['mae'\]"):
        kit.check_evaluator(toy.build("evaluator", "forgets"), model, data, tmp_path / "b")


def test_pipeline_profile_checks(toy_registry):
    reg = toy_registry
    assert kit.check_pipeline_profile(reg.get("pipeline", "pipe"), "full").epochs == 50
    with pytest.raises(ContractError, match="has no 'full' profile \\(it has: quick\\)"):
        kit.check_pipeline_profile(reg.get("pipeline", "noprofiles"), "full")
    with pytest.raises(
        ContractError, match="pipeline 'badprofile', profile 'quick': unknown key 'epochz'; did you mean 'epochs'"
    ):
        kit.check_pipeline_profile(reg.get("pipeline", "badprofile"), "quick")
    with pytest.raises(ContractError, match="epochs='many' is not an integer"):
        kit.check_pipeline_profile(reg.get("pipeline", "badprofile"), "full")


def test_model_with_several_datasets_needs_a_mapping(toy_registry):
    class NoHint(PluginContract):
        plugin = "toy"

    spec = toy_registry.get("model", "good")
    with pytest.raises(ContractError, match="set evaluator_models"):
        NoHint()._by_extras(spec, "model_for_eval", {}, "dataset", "evaluator_models")


# --------------------------------------------------------------------------- the generated pytest tests


def _outcomes(reprec: pytest.HookRecorder) -> dict[str, str]:
    out: dict[str, str] = {}
    for rep in reprec.getreports("pytest_runtest_logreport"):
        name = rep.nodeid.split("::", 1)[1]
        if rep.when == "call" or rep.outcome != "passed":
            out[name] = rep.outcome if rep.when == "call" or rep.outcome == "skipped" else "error"
    return out


@pytest.fixture
def contract_run(pytester: pytest.Pytester, toy_registry: Registry) -> dict[str, str]:
    pytester.makepyfile(test_toy_contract=CONTRACT_TESTS)
    return _outcomes(pytester.inline_run("-p", "no:cacheprovider", "-q"))


def test_generated_tests_fail_exactly_the_broken_components(contract_run):
    o = contract_run
    expected_pass = [
        "TestToy::test_plugin_loads",
        "TestToy::test_plugin_declares_api",
        "TestToy::test_component_loads[model/good]",
        "TestToy::test_dataset_contract[lin]",
        "TestToy::test_model_forward[good]",
        "TestToy::test_model_loss_finite[good]",
        "TestToy::test_model_trains[good]",
        "TestToy::test_model_trains[ownloss]",
        "TestToy::test_model_checkpoint_roundtrip[good]",
        "TestToy::test_model_example_input[good]",
        "TestToy::test_loss_contract[goodloss]",
        "TestToy::test_evaluator_metrics[goodeval]",
        "TestToy::test_pipeline_profile[pipe-quick]",
        "TestToy::test_pipeline_profile[pipe-full]",
        "TestToy::test_model_loss_finite[stuck]",
        "TestCore::test_loss_contract[hybrid]",
        "TestCore::test_loss_contract[cross_entropy]",
        "TestCore::test_evaluator_metrics[regression]",
        "TestCore::test_trainer_fits[supervised]",
        "TestCore::test_tracker_builds[tensorboard]",
        "TestCore::test_callback_builds[grad_histograms]",
    ]
    expected_fail = [
        "TestToy::test_dataset_contract[badstate]",
        "TestToy::test_dataset_contract[empty]",
        "TestToy::test_model_forward[nan]",
        "TestToy::test_model_loss_finite[nan]",
        "TestToy::test_model_trains[nan]",
        "TestToy::test_model_trains[stuck]",
        "TestToy::test_model_checkpoint_roundtrip[forgetful]",
        "TestToy::test_model_example_input[badexample]",
        "TestToy::test_loss_contract[vectorloss]",
        "TestToy::test_evaluator_metrics[forgets]",
        "TestToy::test_pipeline_profile[noprofiles-full]",
        "TestToy::test_pipeline_profile[badprofile-quick]",
        "TestToy::test_pipeline_profile[badprofile-full]",
    ]
    expected_skip = [
        "TestToy::test_model_trains[forgetful]",
        "TestCore::test_evaluator_metrics[classification]",
    ]
    assert {k: o.get(k) for k in expected_pass} == dict.fromkeys(expected_pass, "passed")
    assert {k: o.get(k) for k in expected_fail} == dict.fromkeys(expected_fail, "failed")
    assert {k: o.get(k) for k in expected_skip} == dict.fromkeys(expected_skip, "skipped")


def test_each_component_check_is_its_own_test_id(pytester: pytest.Pytester, toy_registry: Registry):
    pytester.makepyfile(test_toy_contract=CONTRACT_TESTS)
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    out = result.stdout.str()
    for ident in (
        "TestToy::test_model_trains[good]",
        "TestToy::test_model_trains[stuck]",
        "TestToy::test_pipeline_profile[pipe-full]",
        "TestToy::test_component_loads[dataset/lin]",
        "TestCore::test_trainer_fits[supervised]",
        "TestCore::test_loss_contract[mse]",
    ):
        assert ident in out, ident


def test_plugin_that_failed_to_load_fails_loudly(pytester: pytest.Pytester, toy_module: object):
    class Broken:
        MLCORE_API = ">=9"

    reg = Registry.from_modules({"toy": Broken()})
    restore = set_registry(reg)
    try:
        source = "from mlcore.testing import PluginContract\n\nclass TestB(PluginContract):\n    plugin = 'toy'\n"
        pytester.makepyfile(test_broken=source)
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    finally:
        restore()
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1 and "passed" not in outcomes
    assert outcomes["deselected"] >= 10  # the per-component checks have nothing to run on
    result.stdout.fnmatch_lines(["*plugin 'toy' is failed: needs mlcore plugin API >=9*"])


def test_mlcore_plugin_option_runs_the_contract_without_a_test_file(pytester: pytest.Pytester, toy_registry):
    result = pytester.runpytest_inprocess("--mlcore-plugin", "toy", "-p", "no:cacheprovider", "-v", "-k", "good")
    out = result.stdout.str()
    assert result.ret == 0, out
    result.stdout.fnmatch_lines(["*TestContract_toy::test_model_trains?good? PASSED*"])
    assert result.parseoutcomes()["passed"] >= 8, out
    assert not list(Path(pytester.path).glob("test_*.py")), "no file was written into the project"


def test_option_source_and_fixtures(pytester: pytest.Pytester):
    from mlcore.testing.pytest_plugin import contract_module_source

    src = contract_module_source(["sine", "trc-control"])
    assert "class TestContract_trc_control(PluginContract):" in src and "plugin = 'trc-control'" in src
    compile(src, "generated", "exec")
    pytester.makepyfile(
        test_fixtures="""
        import pytest

        def test_fixtures(mlcore_registry, mlcore_tmp_run):
            assert mlcore_registry.plugins["mlcore"].status == "ok"
            assert mlcore_tmp_run.out_dir.is_dir() and mlcore_tmp_run.device.type == "cpu"
            assert mlcore_tmp_run.progress is False

        @pytest.mark.slow
        def test_marker_registered():
            pass
        """
    )
    result = pytester.runpytest_inprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
