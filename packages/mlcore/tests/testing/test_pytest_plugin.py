"""Tests of the pytest11 plugin (mlcore/testing/pytest_plugin.py): ``--mlcore-plugin``, fixtures, marker."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcore.registry import Registry

pytest_plugins = ("pytester",)


def test_mlcore_plugin_option_runs_the_contract_without_a_test_file(pytester: pytest.Pytester, toy_registry: Registry):
    result = pytester.runpytest_inprocess(
        "--mlcore-plugin", "toy", "-p", "no:cacheprovider", "-v", "-k", "good and not loss_contract"
    )
    out = result.stdout.str()
    assert result.ret == 0, out
    passed = {line.split("::")[-1].split(" PASSED")[0] for line in out.splitlines() if " PASSED" in line}
    assert passed == {
        "test_component_loads[model/good]",
        "test_component_loads[loss/goodloss]",
        "test_component_loads[evaluator/goodeval]",
        "test_model_forward[good]",
        "test_model_output_shape[good]",
        "test_model_batch_independent[good]",
        "test_model_loss_finite[good]",
        "test_model_trains[good]",
        "test_model_checkpoint_roundtrip[good]",
        "test_model_example_input[good]",
        "test_evaluator_metrics[goodeval]",
    }, out
    result.stdout.fnmatch_lines(["*TestContract_toy::test_model_trains?good? PASSED*"])
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
