"""``mlcore tune``: read the config and its ``[search]`` table, run the study, write its results."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlcore.config import apply_overrides, load_file, parse_override
from mlcore.errors import ConfigError, RunInterrupted
from mlcore.tuning.results import TuneResult
from mlcore.tuning.space import SearchConfig, parse_search
from mlcore.tuning.trial import TrialSetup, check_space

log = logging.getLogger(__name__)

ENGINES = ("optuna", "ray")
#: ``[search]`` keys that may change when a study is resumed (more trials, more workers)
RESUMABLE_KEYS = ("trials", "jobs")


def split_config(
    config: str | Path | Mapping[str, Any] | None, overrides: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any], list[str], str]:
    """``(base config document, [search] table, the other overrides, source)``.

    ``--set search.x=...`` edits the ``[search]`` table.
    """
    source = ""
    if config is None:
        doc: dict[str, Any] = {}
    elif isinstance(config, Mapping):
        doc = dict(config)
    else:
        doc = load_file(config)
        source = str(config)
    search_sets = [o for o in overrides if parse_override(o)[0][0] == "search"]
    rest = [o for o in overrides if o not in search_sets]
    doc = apply_overrides(doc, search_sets)
    table = doc.pop("search", None)
    if table is None:
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}no [search] table: add one with metric and [search.space] (see docs/tuning.md)")
    return doc, table, rest, source


def default_tune_dir(plugin: str, pipeline: str) -> Path:
    """``tunes/<plugin>-<pipeline>-<YYYYmmdd-HHMMSS>``."""
    from mlcore.runs import default_run_dir

    return default_run_dir(plugin, pipeline, root="tunes")


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(doc, Mapping):
        out: dict[str, Any] = {}
        for key, value in doc.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): doc}


def _check_same_study(out_dir: Path, document: dict[str, Any]) -> bool:
    """True when ``out_dir`` holds a study started with the same search (then it is resumed)."""
    from mlcore.config import unstructure

    path = out_dir / "search.toml"
    if not path.exists():
        return False
    old, new = _flatten(load_file(path)), _flatten(unstructure(document))
    strip = {f"search.{k}" for k in RESUMABLE_KEYS}
    diffs = [
        (k, old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if k not in strip and old.get(k) != new.get(k)
    ]
    if diffs:
        shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in diffs[:3])
        raise ConfigError(
            f"{out_dir} holds a study with another search or base config ({shown}); pick another --out "
            "(only search.trials and search.jobs may change when a study is resumed)"
        )
    return True


def trial_threads(setup_threads: int | None, base: Mapping[str, Any], jobs: int) -> int | None:
    """Threads per trial: the core's setting (``--threads``, ``run.threads``, else the idle CPUs) / ``jobs``."""
    from mlcore.runs import default_threads

    if jobs <= 1:
        return setup_threads
    total = setup_threads or int((base.get("run") or {}).get("threads") or 0) or default_threads()
    return max(1, total // jobs)


def tune(
    plugin: str | None = None,
    *,
    pipeline: str | None = None,
    profile: str | None = None,
    config: str | Path | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    engine: str = "optuna",
    trials: int | None = None,
    jobs: int | None = None,
    seed: int | None = None,
    device: str | None = None,
    threads: int | None = None,
    scheduler: str = "asha",
    searcher: str = "optuna",
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    address: str | None = None,
    resolve_fn: Any = None,
    run_fn: Any = None,
) -> TuneResult:
    """Search the config's ``[search.space]`` (see docs/tuning.md); returns a :class:`TuneResult`.

    The study lives in ``out`` (default ``tunes/<plugin>-<pipeline>-<time>``); running again with the
    same ``out`` resumes it. ``engine``: ``"optuna"`` or ``"ray"`` (then ``scheduler`` asha|pbt|fifo,
    ``searcher`` optuna|random, per-trial ``cpus_per_trial``/``gpus_per_trial``, ``address`` of a cluster).
    ``resolve_fn``/``run_fn``: :func:`mlcore.api.resolve` and :func:`mlcore.api.run` (given by ``api.tune``).
    """
    from mlcore.runs import RunLock, prepare_run_dir

    if resolve_fn is None or run_fn is None:
        raise TypeError("call mlcore.api.tune(), which hands the run functions in")
    if engine not in ENGINES:
        raise ConfigError(f"--engine {engine!r}: must be one of {', '.join(ENGINES)}")
    base, table, rest, source = split_config(config, overrides)
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source or 'config'}: [search] must be a table")
    table = dict(table)
    if trials is not None:
        table["trials"] = trials
    if jobs is not None:
        table["jobs"] = jobs
    search = parse_search(table, source=source)
    resolved = resolve_fn(
        plugin, pipeline=pipeline, profile=profile, config=base, overrides=rest, seed=seed, device=device
    )
    plugin, pipeline = resolved.settings.plugin, resolved.settings.pipeline
    out_dir, _ = prepare_run_dir(out if out is not None else default_tune_dir(plugin, pipeline))
    setup = TrialSetup(
        plugin=plugin,
        pipeline=pipeline,
        profile=resolved.settings.profile,
        config=base,
        overrides=tuple(rest),
        search=search,
        out_dir=out_dir.resolve(),
        resolve_fn=resolve_fn,
        run_fn=run_fn,
        seed=seed,
        device=device,
        threads=trial_threads(threads, base, search.jobs if engine == "optuna" else 1),
    )
    document = {
        "search": search.to_document(),
        "base": {"plugin": plugin, "pipeline": pipeline, "profile": setup.profile, "overrides": list(rest), **base},
    }
    with RunLock(out_dir):
        resuming = _check_same_study(out_dir, document)
        check_space(setup)
        if not resuming:
            from mlcore.config import dumps_toml
            from mlcore.io import atomic_write_text

            atomic_write_text(out_dir / "search.toml", dumps_toml(document))
        log.info(
            "%s study of %d trial(s) on %s/%s -> %s%s",
            engine,
            search.trials,
            plugin,
            pipeline,
            out_dir,
            " (resuming)" if resuming else "",
        )
        started = time.perf_counter()
        if engine == "optuna":
            from mlcore.tuning.optuna_engine import optimize
            from mlcore.tuning.results import rows_from_study

            try:
                study = optimize(setup, search.jobs)
            except (RunInterrupted, KeyboardInterrupt):
                raise RunInterrupted(
                    f"{out_dir}: search interrupted; finished trials are kept in study.db. Resume with the same "
                    f"command (same --out {out_dir})",
                    run_dir=str(out_dir),
                ) from None
            rows = rows_from_study(study)
            return _finish(setup, rows, study, engine="Optuna", seconds=time.perf_counter() - started)
        from mlcore.tuning.ray_engine import run_ray

        rows, study, notes = run_ray(
            setup,
            scheduler=scheduler,
            searcher=searcher,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            address=address,
        )
        return _finish(setup, rows, study, engine="Ray Tune", seconds=time.perf_counter() - started, notes=notes)


def _finish(
    setup: TrialSetup, rows: list[Any], study: Any, *, engine: str, seconds: float, notes: Sequence[str] = ()
) -> TuneResult:
    """Write trials.csv, best_config.toml, best.json, the plots and report.md."""
    from mlcore.tuning.results import best_row, write_best, write_csv, write_plots, write_report

    out_dir = setup.out_dir
    search: SearchConfig = setup.search
    write_csv(rows, search, out_dir / "trials.csv")
    best = best_row(rows, search)
    best_config = write_best(out_dir, best, search)
    plots, skipped = write_plots(study, out_dir / "plots")
    report = write_report(
        out_dir, rows, search, engine=engine, plots=plots, skipped=skipped, seconds=seconds, notes=notes
    )
    if best is not None:
        log.info("best trial %d: %s=%.6g %s", best.number, search.metric, best.value, best.params)
    return TuneResult(
        out_dir=out_dir,
        best_value=None if best is None else best.value,
        best_params={} if best is None else dict(best.params),
        best_trial=None if best is None else best.number,
        best_config=best_config,
        trials=rows,
        plots=plots,
        report=report,
    )
