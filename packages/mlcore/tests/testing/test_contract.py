"""Tests of the test-class generator (mlcore/testing/contract.py), run with pytester on the toy plugin
of tests/testing/conftest.py: every good component passes and every planted bug fails its test.
"""

from __future__ import annotations

import pytest

from mlcore.registry import Registry, set_registry
from mlcore.testing import ContractError, PluginContract
from mlcore.testing.contract import _PARAMETRIZED

pytest_plugins = ("pytester",)

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
    skip = {
        "evaluator/classification": "no classifier in the toy plugin",
        "pipeline/train": "the generic train pipeline ships no profiles",
    }
"""


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


EXPECTED_PASS = [
    "TestToy::test_plugin_loads",
    "TestToy::test_plugin_declares_api",
    "TestToy::test_component_loads[model/good]",
    "TestToy::test_dataset_contract[lin]",
    "TestToy::test_dataset_seed[lin]",
    "TestToy::test_model_forward[good]",
    "TestToy::test_model_output_shape[good]",
    "TestToy::test_model_batch_independent[good]",
    "TestToy::test_model_loss_finite[good]",
    "TestToy::test_model_trains[good]",
    "TestToy::test_model_trains[ownloss]",
    "TestToy::test_model_checkpoint_roundtrip[good]",
    "TestToy::test_model_example_input[good]",
    # issue 9: a plugin loss paired with a model through extras["loss"] (a non-leaf prediction)
    "TestToy::test_loss_contract[goodloss]",
    "TestToy::test_evaluator_metrics[goodeval]",
    "TestToy::test_pipeline_profile[pipe-quick]",
    "TestToy::test_pipeline_profile[pipe-full]",
    "TestToy::test_model_loss_finite[stuck]",
    # the planted bugs below pass every check but their own
    "TestToy::test_model_trains[squeezed]",
    "TestToy::test_model_batch_independent[squeezed]",
    "TestToy::test_model_loss_finite[batchcentred]",
    "TestToy::test_model_trains[batchcentred]",
    "TestToy::test_model_output_shape[batchcentred]",
    "TestToy::test_dataset_contract[fixedseed]",
    "TestToy::test_dataset_contract[globalrng]",
    "TestCore::test_loss_contract[hybrid]",
    "TestCore::test_loss_contract[cross_entropy]",
    "TestCore::test_evaluator_metrics[regression]",
    "TestCore::test_trainer_fits[supervised]",
    "TestCore::test_tracker_builds[tensorboard]",
    "TestCore::test_callback_builds[grad_histograms]",
]
EXPECTED_FAIL = [
    "TestToy::test_dataset_contract[badstate]",
    "TestToy::test_dataset_contract[empty]",
    "TestToy::test_dataset_seed[empty]",
    "TestToy::test_dataset_seed[fixedseed]",
    "TestToy::test_dataset_seed[globalrng]",
    "TestToy::test_model_forward[nan]",
    "TestToy::test_model_loss_finite[nan]",
    "TestToy::test_model_trains[nan]",
    "TestToy::test_model_trains[stuck]",
    "TestToy::test_model_checkpoint_roundtrip[nan]",  # its two training steps are already non-finite
    "TestToy::test_model_checkpoint_roundtrip[forgetful]",
    "TestToy::test_model_example_input[badexample]",
    "TestToy::test_model_output_shape[squeezed]",
    "TestToy::test_model_batch_independent[batchcentred]",
    "TestToy::test_loss_contract[vectorloss]",
    "TestToy::test_evaluator_metrics[forgets]",
    "TestToy::test_pipeline_profile[noprofiles-full]",
    "TestToy::test_pipeline_profile[badprofile-quick]",
    "TestToy::test_pipeline_profile[badprofile-full]",
]
EXPECTED_SKIP = [
    "TestToy::test_model_trains[forgetful]",
    "TestToy::test_model_output_shape[ownloss]",
    "TestCore::test_evaluator_metrics[classification]",
    "TestCore::test_pipeline_profile[train-quick]",
]


def test_generated_tests_fail_exactly_the_broken_components(contract_run):
    o = contract_run
    assert {k: o.get(k) for k in EXPECTED_PASS} == dict.fromkeys(EXPECTED_PASS, "passed")
    assert {k: o.get(k) for k in EXPECTED_FAIL} == dict.fromkeys(EXPECTED_FAIL, "failed")
    assert {k: o.get(k) for k in EXPECTED_SKIP} == dict.fromkeys(EXPECTED_SKIP, "skipped")
    assert sorted(k for k, v in o.items() if v == "failed") == sorted(EXPECTED_FAIL), "no other test fails"
    assert not [k for k, v in o.items() if v == "error"]


def test_failures_say_what_to_fix(pytester: pytest.Pytester, toy_registry: Registry):
    pytester.makepyfile(test_toy_contract=CONTRACT_TESTS)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-k", "TestToy and (squeezed or batchcentred or fixedseed or globalrng)"
    )
    result.stdout.fnmatch_lines_random(
        [
            "*ContractError: Squeezed: output shape (8,) differs from target shape (8, 1)*",
            "*ContractError: BatchCentred mixes samples across the batch*",
            "*ContractError: FixedSeedData: seed=0 and seed=1 give the same first 4 training items*",
            "*ContractError: GlobalRngData: two builds with seed=0 give different training items*",
        ]
    )
    assert "checks.py" not in result.stdout.str(), "the kit's own frames are hidden (__tracebackhide__)"


def test_each_component_check_is_its_own_test_id(pytester: pytest.Pytester, toy_registry: Registry):
    pytester.makepyfile(test_toy_contract=CONTRACT_TESTS)
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    out = result.stdout.str()
    for ident in (
        "TestToy::test_model_trains[good]",
        "TestToy::test_model_trains[stuck]",
        "TestToy::test_pipeline_profile[pipe-full]",
        "TestToy::test_component_loads[dataset/lin]",
        "TestToy::test_dataset_seed[lin]",
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
    # test_plugin_loads fails, test_plugin_declares_api skips, and every per-component check has
    # nothing to run on: deselected, not reported as a skip
    assert result.parseoutcomes() == {"failed": 1, "skipped": 1, "deselected": len(_PARAMETRIZED)}
    result.stdout.fnmatch_lines(["*plugin 'toy' is failed: needs mlcore plugin API >=9*"])


def test_model_with_several_datasets_needs_a_mapping(toy_registry):
    class NoHint(PluginContract):
        plugin = "toy"

    spec = toy_registry.get("model", "good")
    with pytest.raises(ContractError, match="set evaluator_models"):
        NoHint()._by_extras(spec, "model_for_eval", {}, "dataset", "evaluator_models")
