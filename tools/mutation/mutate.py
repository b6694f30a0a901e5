"""Mutation testing of the modules where a silent error corrupts results.

For each target module: plant one small bug at a time (a mutant), run only the tests that cover
that module, and count the mutant *killed* if they fail (or time out), *survived* if they pass.
Prints a score per module (killed / run) and writes ``tools/bench/results/mutation.json`` with
every survivor's file:line and change, so each can become a test. Not part of CI: it takes
minutes per module. Run it before resolving an issue that touches these modules::

    OMP_NUM_THREADS=1 hatch run python tools/mutation/mutate.py                    # every target
    hatch run python tools/mutation/mutate.py --only prioritized,solvers --max-mutants 40
    hatch run python tools/mutation/mutate.py --list                               # the targets

Why a mutator of our own rather than mutmut or cosmic-ray (both on PyPI, both checked):
mutmut 3 copies the sources into ``mutants/`` and imports them from there, but the hatch
environment installs the core and the plugins *editable* from their ``src`` folders, so the
mutated copies are never the ones imported in this monorepo layout. cosmic-ray fits the layout
(it mutates in place) but enumerates every operator pair (thousands of mutants for these modules
at seconds each) with no sampling or time budget, and brings 17 packages and a sqlite session; a
wrapper for sampling, budget and the per-module JSON was needed either way. The operators here are
the bugs a reviewer misses — a flipped or off-by-one comparison, a dropped term, an off-by-one
constant, a negated condition or boolean, a dropped statement, a wrong return value — applied with
the standard library's ``ast`` only.

Mutants are applied to a private copy of the working tree (the tracked and untracked files, put
first on ``PYTHONPATH``), never to the checkout itself: an interrupted run leaves nothing behind
and other work in the checkout can go on meanwhile.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tools" / "bench" / "results" / "mutation.json"
sys.path.insert(0, str(ROOT / "tools" / "bench"))

NAV = "plugins/nav-rl"
TRC = "plugins/trc-control"
CORE = "packages/mlcore"

#: (short name, module file, the tests that cover it) — the tests mirror the source tree, plus the
#: end-to-end tests that exercise a module through others (resume through the trainer, ...).
TARGETS: list[tuple[str, str, list[str]]] = [
    ("prioritized", f"{NAV}/src/mlcore_nav_rl/buffers/prioritized.py", [f"{NAV}/tests/buffers"]),
    ("her_nstep", f"{NAV}/src/mlcore_nav_rl/buffers/her_nstep.py", [f"{NAV}/tests/buffers"]),
    ("algorithms", f"{NAV}/src/mlcore_nav_rl/algorithms/__init__.py", [f"{NAV}/tests/algorithms"]),
    ("solvers", f"{TRC}/src/mlcore_trc_control/lqr/solvers.py", [f"{TRC}/tests/lqr"]),
    ("trc_evaluation", f"{TRC}/src/mlcore_trc_control/evaluation.py", [f"{TRC}/tests/test_evaluation.py"]),
    (
        "checkpoint",
        f"{CORE}/src/mlcore/training/checkpoint.py",
        [f"{CORE}/tests/training/test_checkpoint.py", f"{CORE}/tests/training/test_trainer.py"],
    ),
    ("config", f"{CORE}/src/mlcore/config.py", [f"{CORE}/tests/test_config.py"]),
    ("registry", f"{CORE}/src/mlcore/registry.py", [f"{CORE}/tests/test_registry.py"]),
    ("evaluation", f"{CORE}/src/mlcore/evaluation/__init__.py", [f"{CORE}/tests/evaluation"]),
    (
        "classification",
        f"{CORE}/src/mlcore/evaluation/classification.py",
        [f"{CORE}/tests/evaluation/test_classification.py"],
    ),
    ("regression", f"{CORE}/src/mlcore/evaluation/regression.py", [f"{CORE}/tests/evaluation/test_regression.py"]),
]

_COMPARE_SWAP: dict[type, type] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BINOP_SWAP: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
}
#: calls whose statement is not worth mutating (logging, warnings, printing)
_QUIET_CALLS = {"log", "logger", "_log", "_logger", "LOG", "warnings", "print"}


@dataclass
class Site:
    """One mutation: where and what."""

    index: int
    line: int
    change: str


class Mutator(ast.NodeTransformer):
    """Walks a module in a fixed order, numbering every mutation site inside function bodies.

    With ``target = -1`` it only records the sites; with ``target = k`` it applies the k-th and
    leaves everything else untouched. Annotations, docstrings, ``raise``/``assert`` statements
    and logging calls are skipped: mutating them changes no result.
    """

    def __init__(self, target: int = -1) -> None:
        self.target = target
        self.sites: list[Site] = []
        self.applied: Site | None = None
        self._in_function = 0

    # -- bookkeeping
    def _site(self, node: ast.AST, change: str) -> bool:
        """Number a site; True when it is the one to apply."""
        if not self._in_function or self.applied is not None:
            return False
        site = Site(len(self.sites), getattr(node, "lineno", 0), change)
        self.sites.append(site)
        if site.index == self.target:
            self.applied = site
            return True
        return False

    def generic_visit(self, node: ast.AST) -> ast.AST:
        """ast.NodeTransformer.generic_visit, minus annotations (never executed under PEP 563)."""
        for name, old in ast.iter_fields(node):
            if name in ("annotation", "returns", "decorator_list"):
                continue
            if isinstance(old, list):
                new: list[Any] = []
                for value in old:
                    if isinstance(value, ast.AST):
                        value = self.visit(value)
                        if value is None:
                            continue
                    new.append(value)
                old[:] = new
            elif isinstance(old, ast.AST):
                setattr(node, name, self.visit(old))
        return node

    # -- scopes
    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self._in_function += 1
        first = node.body[0]
        skip_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        for i in range(1 if skip_docstring else 0, len(node.body)):
            node.body[i] = self.visit(node.body[i])
        self._in_function -= 1
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        return node

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        return node

    # -- statements
    def _drop(self, node: ast.stmt, what: str) -> ast.AST:
        if self._site(node, f"drop the statement ({what})"):
            return ast.copy_location(ast.Pass(), node)
        return self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        call = node.value
        if isinstance(call, ast.Call):
            func = call.func
            while isinstance(func, ast.Attribute):
                func = func.value
            if isinstance(func, ast.Name) and func.id in _QUIET_CALLS:
                return node
            return self._drop(node, ast.unparse(node)[:60])
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        return self._drop(node, ast.unparse(node)[:60])

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        return self._drop(node, ast.unparse(node)[:60])

    def visit_Return(self, node: ast.Return) -> ast.AST:
        returns_something = node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None
        )
        if returns_something and self._site(node, f"return None instead of {ast.unparse(node.value)[:50]}"):
            return ast.copy_location(ast.Return(value=ast.Constant(None)), node)
        return self.generic_visit(node)

    def _negate_test(self, node: ast.If | ast.While | ast.IfExp) -> ast.AST:
        if self._site(node, f"negate the condition `{ast.unparse(node.test)[:60]}`"):
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
            return node
        return self.generic_visit(node)

    def visit_If(self, node: ast.If) -> ast.AST:
        return self._negate_test(node)

    def visit_While(self, node: ast.While) -> ast.AST:
        return self._negate_test(node)

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        return self._negate_test(node)

    # -- expressions
    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        for i, op in enumerate(node.ops):
            swap = _COMPARE_SWAP.get(type(op))
            if swap is not None and self._site(node, f"`{_sym(op)}` -> `{_sym(swap())}` in `{ast.unparse(node)[:60]}`"):
                node.ops[i] = swap()
                return node
        return self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        text = ast.unparse(node)[:60]
        swap = _BINOP_SWAP.get(type(node.op))
        if swap is not None and self._site(node, f"`{_sym(node.op)}` -> `{_sym(swap())}` in `{text}`"):
            node.op = swap()
            return node
        if isinstance(node.op, (ast.Add, ast.Sub)):
            if self._site(node, f"drop the right term of `{text}`"):
                return node.left
            if isinstance(node.op, ast.Add) and self._site(node, f"drop the left term of `{text}`"):
                return node.right
        return self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        if self._site(node, f"`{_sym(node.op)}` -> `{_sym(other)}` in `{ast.unparse(node)[:60]}`"):
            node.op = other
            return node
        return self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if isinstance(node.op, (ast.Not, ast.USub)) and self._site(
            node, f"drop `{_sym(node.op)}` in `{ast.unparse(node)[:60]}`"
        ):
            return node.operand
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._site(node, f"{value} -> {not value}"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, int):
            if self._site(node, f"{value} -> {value + 1}"):
                return ast.copy_location(ast.Constant(value + 1), node)
        elif isinstance(value, float) and self._site(node, f"{value!r} -> {_nudge(value)!r}"):
            return ast.copy_location(ast.Constant(_nudge(value)), node)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node  # message text

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        while isinstance(func, ast.Attribute):
            func = func.value
        if isinstance(func, ast.Name) and func.id in _QUIET_CALLS:
            return node
        return self.generic_visit(node)


def _nudge(value: float) -> float:
    """A plausible wrong float: 0 -> 1, otherwise doubled."""
    return 1.0 if value == 0 else value * 2


_SYMBOLS = {
    "Lt": "<", "LtE": "<=", "Gt": ">", "GtE": ">=", "Eq": "==", "NotEq": "!=", "Is": "is", "IsNot": "is not",
    "In": "in", "NotIn": "not in", "Add": "+", "Sub": "-", "Mult": "*", "Div": "/", "FloorDiv": "//", "Mod": "%",
    "Pow": "**", "And": "and", "Or": "or", "Not": "not", "USub": "-",
}  # fmt: skip


def _sym(op: ast.AST) -> str:
    return _SYMBOLS.get(type(op).__name__, type(op).__name__)


def sites_of(source: str) -> list[Site]:
    """Every mutation site of a module's source."""
    m = Mutator()
    m.visit(ast.parse(source))
    return m.sites


def mutant(source: str, index: int) -> tuple[str, Site]:
    """The source with mutation ``index`` applied."""
    tree = ast.parse(source)
    m = Mutator(index)
    tree = m.visit(tree)
    assert m.applied is not None, index
    ast.fix_missing_locations(tree)
    return ast.unparse(tree) + "\n", m.applied


# ------------------------------------------------------------------------------------------ running


def copy_tree(dest: Path) -> None:
    """Copy the checkout's tracked and untracked (not ignored) files to ``dest``."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for raw in files:
        if not raw:
            continue
        rel = raw.decode()
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def source_roots(tree: Path) -> list[str]:
    """The ``src`` folders of the core and every plugin in a tree, to put first on PYTHONPATH."""
    return [str(p) for p in sorted(tree.glob("packages/*/src")) + sorted(tree.glob("plugins/*/src"))] + [
        str(p) for p in sorted(tree.glob("examples/*/src"))
    ]


@dataclass
class Outcome:
    """Result of running the covering tests once."""

    passed: bool
    timed_out: bool
    seconds: float
    tail: str = ""


def run_tests(tree: Path, tests: list[str], env: dict[str, str], timeout: float, slow: bool) -> Outcome:
    """Run ``tests`` (paths relative to the tree) with pytest in a child forked from this process.

    The parent has already imported torch, numpy, scipy, pytest... (never mlcore or a plugin), so
    each mutant costs its tests, not a fresh interpreter's imports; the child imports the module
    under test from the copy. Stops at the first failure; a timeout counts as a failure.
    """
    args = ["-x", "-q", "-p", "no:cacheprovider", "--no-header"] + ([] if slow else ["-m", "not slow"]) + tests
    log = tree / ".mutation-pytest.log"
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            os.setsid()
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.chdir(tree)
            os.environ.update(env)
            sys.path[:0] = env["PYTHONPATH"].split(os.pathsep)
            import pytest

            code = int(pytest.main(args))
        finally:
            os._exit(code)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() - start > timeout:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return Outcome(False, True, time.perf_counter() - start)
        time.sleep(0.05)
    code = os.waitstatus_to_exitcode(status)
    tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-5:])
    return Outcome(code == 0, False, time.perf_counter() - start, tail)


def preload() -> None:
    """Import the heavy third-party libraries once, before forking (never mlcore or a plugin)."""
    for name in ("torch", "numpy", "scipy.linalg", "matplotlib.pyplot", "pytest", "gymnasium", "stable_baselines3"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


@dataclass
class ModuleResult:
    """The per-module record written to the JSON file."""

    name: str
    path: str
    tests: list[str]
    sites: int = 0
    sampled: int = 0
    run: int = 0
    killed: int = 0
    timeouts: int = 0
    baseline_seconds: float = 0.0
    seconds: float = 0.0
    stopped: str = ""
    survivors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        return self.killed / self.run if self.run else None

    def record(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items()}
        out["score"] = self.score
        return out


def mutate_module(
    name: str,
    rel: str,
    tests: list[str],
    tree: Path,
    env: dict[str, str],
    *,
    max_mutants: int,
    minutes: float,
    deadline: float,
    seed: int,
    slow: bool,
) -> ModuleResult:
    """Baseline, then up to ``max_mutants`` sampled mutants of one module within the time limits."""
    res = ModuleResult(name, rel, tests)
    path = tree / rel
    if not path.is_file():
        res.stopped = "module not found"
        return res
    missing = [t for t in tests if not (tree / t).exists()]
    if missing:
        res.stopped = f"tests not found: {', '.join(missing)}"
        return res
    original = path.read_text(encoding="utf-8")
    sites = sites_of(original)
    res.sites = len(sites)
    chosen = sorted(random.Random(f"{seed}:{rel}").sample(range(len(sites)), min(max_mutants, len(sites))))
    res.sampled = len(chosen)
    base = run_tests(tree, tests, env, timeout=900, slow=slow)
    res.baseline_seconds = round(base.seconds, 2)
    print(
        f"    baseline: tests pass in {base.seconds:.1f} s; {len(chosen)} of {len(sites)} mutants sampled", flush=True
    )
    if not base.passed:
        res.stopped = "the tests fail without any mutant: " + base.tail.replace("\n", " | ")[-300:]
        return res
    timeout = max(30.0, 3 * base.seconds + 10)
    start = time.perf_counter()
    module_deadline = min(deadline, start + 60 * minutes)
    try:
        for index in chosen:
            if time.perf_counter() + base.seconds > module_deadline:
                res.stopped = "time budget"
                break
            text, site = mutant(original, index)
            path.write_text(text, encoding="utf-8")
            _forget_bytecode(path)
            out = run_tests(tree, tests, env, timeout=timeout, slow=slow)
            res.run += 1
            if out.passed:
                res.survivors.append({"line": site.line, "change": site.change, "where": f"{rel}:{site.line}"})
                mark = "SURVIVED"
            else:
                res.killed += 1
                res.timeouts += out.timed_out
                mark = "killed (timeout)" if out.timed_out else "killed"
            print(f"    {rel}:{site.line}: {site.change} -> {mark} ({out.seconds:.1f} s)", flush=True)
    finally:
        path.write_text(original, encoding="utf-8")
        _forget_bytecode(path)
    res.seconds = round(time.perf_counter() - start, 1)
    return res


def _forget_bytecode(path: Path) -> None:
    """Drop the cached bytecode: a same-size mutant written within a second could reuse it."""
    Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)


def git_commit() -> str:
    """The checkout's commit, with ``+dirty`` when it has uncommitted changes."""
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], cwd=ROOT, capture_output=True, text=True).stdout
    return sha + ("+dirty" if dirty.strip() else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated target names (see --list)")
    parser.add_argument("--max-mutants", type=int, default=25, help="mutants sampled per module (default 25)")
    parser.add_argument("--minutes", type=float, default=4.0, help="time budget per module (default 4)")
    parser.add_argument("--total-minutes", type=float, default=25.0, help="time budget for the whole run (default 25)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mutant sample")
    parser.add_argument("--slow", action="store_true", help="also run the tests marked slow")
    parser.add_argument("--results", default=str(RESULTS), help="JSON file to write (merged per module)")
    parser.add_argument("--list", action="store_true", help="list the targets and their mutation sites, then exit")
    args = parser.parse_args(argv)

    targets = TARGETS
    if args.only:
        wanted = {s.strip() for s in args.only.split(",") if s.strip()}
        unknown = wanted - {t[0] for t in TARGETS}
        if unknown:
            parser.error(f"unknown targets {sorted(unknown)}; known: {', '.join(t[0] for t in TARGETS)}")
        targets = [t for t in TARGETS if t[0] in wanted]
    if args.list:
        for name, rel, tests in targets:
            path = ROOT / rel
            n = len(sites_of(path.read_text(encoding="utf-8"))) if path.is_file() else "missing"
            print(f"{name:<16} {rel}  ({n} sites)  tests: {' '.join(tests)}")
        return 0

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported
    os.environ["MPLBACKEND"] = "Agg"
    os.environ.pop("MLCORE_PLUGINS", None)
    preload()
    deadline = time.perf_counter() + 60 * args.total_minutes
    results: list[ModuleResult] = []
    with tempfile.TemporaryDirectory(prefix="mlcore-mutation-") as tmp:
        tree = Path(tmp)
        commit = git_commit()  # what the copy holds
        copy_tree(tree)
        env: dict[str, str] = {}
        env["PYTHONPATH"] = os.pathsep.join(source_roots(tree))
        check = subprocess.run(
            [sys.executable, "-c", "import mlcore; print(mlcore.__file__)"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        if not check.stdout.strip().startswith(str(tree)):
            print(f"mutation: the copy is not what gets imported ({check.stdout.strip() or check.stderr[-300:]})")
            return 2
        for name, rel, tests in targets:
            if time.perf_counter() > deadline:
                results.append(ModuleResult(name, rel, tests, stopped="total time budget"))
                continue
            print(f"[{name}] {rel}  (tests: {' '.join(tests)})", flush=True)
            res = mutate_module(
                name,
                rel,
                tests,
                tree,
                env,
                max_mutants=args.max_mutants,
                minutes=args.minutes,
                deadline=deadline,
                seed=args.seed,
                slow=args.slow,
            )
            results.append(res)
            score = f"{res.score:.0%}" if res.score is not None else "-"
            print(
                f"[{name}] score {score}: {res.killed}/{res.run} killed ({res.sites} sites) {res.stopped}", flush=True
            )

    print(f"\n{'module':<16} {'score':>6} {'killed':>7} {'run':>4} {'sites':>6}  note")
    for r in results:
        score = f"{r.score:.0%}" if r.score is not None else "-"
        print(f"{r.name:<16} {score:>6} {r.killed:>7} {r.run:>4} {r.sites:>6}  {r.stopped}")
    write(Path(args.results), results, args, commit)
    return 0


def write(path: Path, results: list[ModuleResult], args: argparse.Namespace, commit: str) -> None:
    """Merge this run's modules into the JSON file (other modules keep their last record)."""
    from _common import machine_info

    old: dict[str, Any] = {}
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8")).get("modules", {})
    stamp = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit, "machine": machine_info()}
    settings = {"max_mutants": args.max_mutants, "seed": args.seed, "slow_tests": args.slow}
    for r in results:
        if r.run:  # a module not run keeps its previous record
            old[r.name] = {**r.record(), **stamp, "settings": settings}
    payload = {"benchmark": "mutation", "script": "tools/mutation/mutate.py", "modules": dict(sorted(old.items()))}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    sys.exit(main())
