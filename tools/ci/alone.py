"""Install each plugin ALONE next to the core, with plain pip in a brand-new venv, and use it.

For every plugin folder (``plugins/*`` and ``examples/*`` with an ``mlcore.plugins`` entry point),
or only the ones named on the command line:

1. ``python -m venv`` a fresh environment; ``pip install torch==2.13.0`` first (the CPU wheel the
   hatch environments pin), then ``pip install ./packages/mlcore ./<plugin folder>`` — nothing else;
2. ``mlcore plugins --json``: fails unless every listed plugin has status ``ok`` and this one is there;
3. ``mlcore run --plugin NAME`` with a short budget (``SMOKE`` below): the whole pipeline, imports
   of every heavy dependency included;
4. ``pip install pytest pytest-timeout`` into that venv, then the plugin's tests (slow end-to-end
   ones included) and the conformance kit's own tests (``packages/mlcore/tests/testing``),
   run against the installed, non-editable packages.

So a dependency that only hatch's environments (or this machine) happen to carry fails here. The
plugins run one after another (2-core CI); every plugin is tried even when an earlier one failed.

    python tools/ci/alone.py                 # every plugin
    python tools/ci/alone.py nav-rl          # one (a folder name under plugins/ or examples/)
    python tools/ci/alone.py --keep nav-rl   # keep the venv and logs for a look afterwards
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: the same pin as the hatch environments in the root pyproject.toml
TORCH = "torch==2.13.0"
TEST_TOOLS = ["pytest>=8", "pytest-timeout>=2.2"]
#: overrides that make each plugin's default run short; a plugin not listed runs its default profile
SMOKE: dict[str, list[str]] = {
    "trc-control": [
        "data.num_samples=256",
        "data.test_num_samples=64",
        "trainer.epochs=2",
        "comparison.sweep_cycles=[1,3]",
        "comparison.generalisation_samples=32",
        "evaluation.timing_problems=10",
    ],
    "nav-rl": [
        "trainer.total_timesteps=600",
        "model.learning_starts=200",
        "trainer.eval_freq=300",
        "trainer.eval_episodes=2",
        "evaluator.episodes=3",
    ],
    "sine": ["trainer.epochs=2"],
    "printer-corrector": [
        'dataset.parts=["bearing","boat"]',
        "dataset.layers=sampled:3",
        "dataset.slicing.layer_height=0.6",
        "model.hidden_size=32",
        "model.num_layers=1",
        "trainer.epochs=2",
        "compare.streaming_samples=300",
        "compare.compensation_layers=1",
    ],
    "diffplan-vins": [
        "dataset.num=80",
        "trainer.epochs=1",
        "planner.k=6",
        "planner.hidden_channels=4",
        "planner.q_channels=4",
        "generalisation.num=4",
    ],
    "continuous-dynamics": [
        "dataset.episodes=8",
        "dataset.episode_seconds=3.5",
        "dataset.sequence_length=5",
        "dataset.horizon=8",
        "evaluator.horizon=8",
        "evaluator.max_rollout_windows=16",
        "epochs_scale=0.05",
        "ablation.enabled=false",
    ],
}
#: the conformance kit's own tests, run with each plugin
KIT_TESTS = "packages/mlcore/tests/testing"


class StepFailed(Exception):
    """A step of one plugin's check failed; the message says which and why."""


def plugin_folders() -> list[Path]:
    """Every folder under plugins/ and examples/ whose pyproject.toml declares an mlcore plugin."""
    found = []
    for parent in ("plugins", "examples"):
        for d in sorted((ROOT / parent).glob("*/")):
            if entry_point_name(d) is not None:
                found.append(d)
    return found


def entry_point_name(folder: Path) -> str | None:
    """The plugin name of the folder's ``[project.entry-points."mlcore.plugins"]`` table, if any."""
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        return None
    text = pyproject.read_text(encoding="utf-8")
    table = re.search(r'^\[project\.entry-points\."mlcore\.plugins"\]\s*\n(.*?)(?=^\[|\Z)', text, re.M | re.S)
    if table is None:
        return None
    names = re.findall(r'^\s*"?([A-Za-z0-9_.-]+)"?\s*=', table.group(1), re.M)
    return names[0] if names else None


def resolve(names: list[str]) -> list[Path]:
    """Folders for the names given on the command line (folder names, or plugin names)."""
    folders = plugin_folders()
    if not names:
        return folders
    chosen = []
    for name in names:
        match = [d for d in folders if name in (d.name, entry_point_name(d))]
        if not match:
            known = ", ".join(d.name for d in folders)
            raise SystemExit(f"alone: no plugin folder {name!r} (known: {known})")
        chosen.append(match[0])
    return chosen


def step(log: Path, label: str, argv: list[str], *, env: dict[str, str], timeout: float) -> str:
    """Run one command from the repo root, its output into ``log``; raise StepFailed on failure."""
    print(f"  + {label}", flush=True)
    try:
        done = subprocess.run(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(f"{label}: timed out after {timeout:.0f} s") from exc
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ {' '.join(argv)}\n{done.stdout}")
    if done.returncode != 0:
        tail = "\n".join(done.stdout.rstrip().splitlines()[-25:])
        raise StepFailed(f"{label}: exit {done.returncode}\n{tail}")
    return done.stdout


def check_plugin(folder: Path, work: Path) -> None:
    """All four steps for one plugin folder in a new venv under ``work``."""
    name = entry_point_name(folder)
    assert name is not None
    venv = work / "venv"
    log = work / "log.txt"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "MLCORE_PLUGINS")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    py = str(venv / "bin" / "python")
    mlcore = str(venv / "bin" / "mlcore")
    rel = folder.relative_to(ROOT)

    step(log, "python -m venv", [sys.executable, "-m", "venv", str(venv)], env=env, timeout=300)
    step(log, f"pip install {TORCH}", [py, "-m", "pip", "install", "-q", "--no-compile", TORCH], env=env, timeout=1200)
    step(
        log,
        f"pip install ./packages/mlcore ./{rel}",
        [py, "-m", "pip", "install", "-q", "--no-compile", "./packages/mlcore", f"./{rel}"],
        env=env,
        timeout=1200,
    )
    listing = json.loads(step(log, "mlcore plugins --json", [mlcore, "plugins", "--json"], env=env, timeout=120))
    bad = [f"{p['name']}: {p['status']} ({p.get('reason', '')})" for p in listing if p["status"] != "ok"]
    if bad:
        raise StepFailed("mlcore plugins reports: " + "; ".join(bad))
    if name not in {p["name"] for p in listing}:
        raise StepFailed(f"mlcore plugins does not list {name!r}")
    overrides = [a for o in SMOKE.get(name, []) for a in ("--set", o)]
    step(
        log,
        f"mlcore run --plugin {name} (short)",
        [mlcore, "run", "--plugin", name, "--out", str(work / "run"), *overrides],
        env=env,
        timeout=900,
    )
    step(
        log, "pip install pytest pytest-timeout", [py, "-m", "pip", "install", "-q", *TEST_TOOLS], env=env, timeout=600
    )
    tests = [str(rel / "tests"), KIT_TESTS]
    step(
        log,
        f"pytest {' '.join(tests)}",
        [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(work / "pytest"), *tests],
        env=env,
        timeout=1800,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="plugin folders to check (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the venvs, runs and logs")
    args = parser.parse_args(argv)

    failed = []
    total = time.perf_counter()
    for folder in resolve(args.names):
        work = Path(tempfile.mkdtemp(prefix=f"alone-{folder.name}-"))
        start = time.perf_counter()
        print(f"alone[{folder.name}]: core + {folder.relative_to(ROOT)} in a fresh venv ({work})", flush=True)
        try:
            check_plugin(folder, work)
        except StepFailed as exc:
            failed.append(folder.name)
            print(f"alone[{folder.name}]: FAILED after {time.perf_counter() - start:.0f} s at {exc}", flush=True)
            print(f"alone[{folder.name}]: full log kept in {work / 'log.txt'}", flush=True)
            continue
        print(f"alone[{folder.name}]: ok in {time.perf_counter() - start:.0f} s", flush=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - total
    if failed:
        print(f"alone: {len(failed)} failed ({', '.join(failed)}) in {elapsed:.0f} s")
        return 1
    print(f"alone: every plugin installs and runs alone ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
