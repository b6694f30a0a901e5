"""``mlcore plugins/list/show``: fast paths that never import torch, JSON output, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

from mlcore.cli.main import main


def test_listing_commands_do_not_import_torch():
    code = (
        "import sys\n"
        "from mlcore.cli.main import main\n"
        "for argv in (['plugins'], ['list'], ['list', 'model', '--json'], ['plugins', '--json'], ['--help']):\n"
        "    assert main(argv) == 0, argv\n"
        "heavy = ('torch', 'scipy', 'stable_baselines3', 'torch_geometric', 'gymnasium')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('OK')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("OK")


def test_list_and_show(capsys):
    assert main(["list", "loss", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"mse", "hybrid"}
    assert main(["show", "loss", "hybrid"]) == 0
    out = capsys.readouterr().out
    assert "ratio = 0.5" in out
    assert main(["list", "--plugin", "mlcore"]) == 0
    assert "supervised" in capsys.readouterr().out


def test_unknown_names_are_one_line_errors(capsys):
    assert main(["show", "loss", "mse2"]) == 2
    err = capsys.readouterr().err.strip()
    # installed plugins may add losses (diffplan-vins: optimal-set-ce, graph-action), so only the core's are pinned
    assert err.startswith("error: no loss named 'mse2'; did you mean 'mse'? (available: ")
    available = err.split("(available: ", 1)[1].rstrip(")").split(", ")
    assert {"cross_entropy", "huber", "hybrid", "mae", "mse"} <= set(available) and available == sorted(available)
    assert err.endswith(")") and "\n" not in err
    assert main(["list", "--plugin", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no plugin named 'nope'")
    assert "\n" not in err
    assert main(["list", "widget"]) == 2
    assert "'widget' is not one of 'dataset'" in capsys.readouterr().err


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert "plugin API 1.0" in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--profile" in out and "--set KEY=VALUE" in out


def test_show_of_every_builtin_imports_only_configs_not_torch():
    code = (
        "import sys\n"
        "from mlcore.cli.main import main\n"
        "from mlcore.registry import get_registry\n"
        "specs = get_registry().components(plugin='mlcore')\n"
        "assert any(s.config for s in specs)\n"
        "for s in specs:\n"
        "    assert main(['show', s.kind, s.name]) == 0, s.qualified_name\n"
        "    assert 'torch' not in sys.modules, s.qualified_name\n"
        "print('OK')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "options (override with --set <section>.<name>=VALUE)" in result.stdout
    assert result.stdout.strip().endswith("OK")


def test_kinds_are_accepted_in_the_plural(capsys):
    for word in ("models", "Losses", "loss"):
        assert main(["list", word, "--json"]) == 0, word
    capsys.readouterr()
    assert main(["list", "losses", "--json"]) == 0
    assert {r["kind"] for r in json.loads(capsys.readouterr().out)} == {"loss"}
    assert main(["show", "losses", "huber"]) == 0
    assert "delta = 1.0" in capsys.readouterr().out


def test_an_empty_listing_says_what_is_there(capsys, isolated_registry):
    from mlcore import ComponentSpec, hookimpl

    class OnlyData:
        @staticmethod
        @hookimpl
        def register_datasets():
            return [ComponentSpec("d", "x:y")]

    isolated_registry({"onlydata": OnlyData})
    assert main(["list", "trainers", "--plugin", "onlydata"]) == 0
    assert capsys.readouterr().out.strip() == (
        "plugin 'onlydata' registers no trainer; the trainers available to it: supervised [mlcore]"
    )
    assert main(["list", "tracker"]) == 0
    out = capsys.readouterr().out
    assert "mlflow" in out and "tensorboard" in out
