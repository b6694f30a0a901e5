"""The ``release`` pipeline: train every model of the release table and publish them.

Each entry of :data:`~mlcore_diffplan_vins.release.table.RELEASE_TABLE` is trained by one
:func:`mlcore.api.run` of the plugin's ``single`` (grid) or ``graph-single`` (graph, continuous)
pipeline into ``<run>/runs/<name>``, then laid out under ``<run>/pretrained_models/<category>/<name>``
(:func:`~mlcore_diffplan_vins.release.layout.package_run`). At the end the pipeline writes the
release README, QUICKSTART and ``release.json``, checks every model (``check-release``) and packs
``pretrained_models.tar.gz``. Running the same command again resumes: models already packaged are
skipped and an interrupted entry's run resumes through the core from its ``last.pt``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs

from mlcore.config import in_range, one_of
from mlcore.errors import ConfigError, DataError
from mlcore.pipelines import Pipeline
from mlcore.runs import RunContext
from mlcore_diffplan_vins.release.table import CATEGORIES, RELEASE_TABLE, ReleaseEntry, entry_named

log = logging.getLogger(__name__)

__all__ = ["ReleaseConfig", "ReleasePipeline"]

PLUGIN = "diffplan-vins"
RELEASE_DIR = "pretrained_models"
ARCHIVE = "pretrained_models.tar.gz"


@attrs.define
class ReleaseConfig:
    """Config of the ``release`` pipeline.

    Attributes:
        entries: release names to train (empty = every entry whose pipeline is installed).
        entry_profile: the profile each entry's run uses (``quick`` or ``full``).
        quick_sizes: also apply each entry's own small-network overrides (the ``quick`` profile's).
        overrides: ``--set`` overrides per trained pipeline, applied to every entry of it, e.g.
            ``{single = ["trainer.epochs=2"]}``.
        archive: pack the release into ``pretrained_models.tar.gz``.
        check: run ``check-release`` on the finished release (a failing model fails the run).
        max_file_mb: the size limit of one checkpoint in MB (10^6 bytes).
        notes: free text for the release README.
    """

    entries: list[str] = attrs.field(factory=list)
    entry_profile: str = attrs.field(default="full", validator=one_of("quick", "full"))
    quick_sizes: bool = False
    overrides: dict[str, list[str]] = attrs.field(factory=dict)
    archive: bool = True
    check: bool = True
    max_file_mb: float = attrs.field(default=10.0, validator=in_range(0.0, low_open=True))
    notes: str = ""


class ReleasePipeline(Pipeline):
    """Train, package, check and pack the release (see the module docstring)."""

    config: ReleaseConfig

    def __init__(self, config: ReleaseConfig | None = None) -> None:
        super().__init__(config or ReleaseConfig())

    # ------------------------------------------------------------------ what to train
    def selected(self) -> list[ReleaseEntry]:
        """The entries to train: the named ones, or every entry whose pipeline is installed."""
        from mlcore.registry import get_registry

        available = {s.name for s in get_registry().pipelines(PLUGIN)}
        if self.config.entries:
            chosen = [entry_named(n) for n in self.config.entries]
            missing = [e for e in chosen if e.pipeline not in available]
            if missing:
                e = missing[0]
                raise ConfigError(
                    f"entries: {e.name!r} is trained by pipeline {e.pipeline!r}, which plugin {PLUGIN!r} "
                    f"does not register (pipelines: {', '.join(sorted(available))})"
                )
            return chosen
        chosen = [e for e in RELEASE_TABLE if e.pipeline in available]
        skipped = sorted({e.pipeline for e in RELEASE_TABLE} - available)
        if skipped:
            log.warning("release: no pipeline %s installed; its entries are left out", ", ".join(skipped))
        return chosen

    def overrides_of(self, entry: ReleaseEntry) -> list[str]:
        """The ``--set`` overrides of ``entry``'s run: its own, the quick sizes, then the config's per pipeline."""
        extra = self.config.overrides.get(entry.pipeline, [])
        return [*entry.overrides, *(entry.quick if self.config.quick_sizes else ()), *extra]

    def check(self, ctx: RunContext) -> None:
        """Resolve every selected entry's run config (names, overrides, profiles) before anything trains."""
        from mlcore import api

        unknown = [p for p in self.config.overrides if p not in {e.pipeline for e in RELEASE_TABLE}]
        if unknown:
            raise ConfigError(f"overrides.{unknown[0]}: no release entry is trained by pipeline {unknown[0]!r}")
        selected = self.selected()
        if not selected:
            raise ConfigError("release: no entry to train (entries is empty and no entry's pipeline is installed)")
        for entry in selected:
            try:
                api.resolve(
                    PLUGIN,
                    pipeline=entry.pipeline,
                    profile=self.config.entry_profile,
                    overrides=self.overrides_of(entry),
                    seed=entry.seed,
                )
            except ConfigError as exc:
                raise ConfigError(f"release entry {entry.name}: {exc}") from None

    # ------------------------------------------------------------------ the flow
    def run(self, ctx: RunContext) -> dict[str, Any]:
        """Train and package every entry (skipping packaged ones), write the docs, check, pack."""
        from mlcore.io import atomic_write_json, atomic_write_text, read_json, to_jsonable
        from mlcore_diffplan_vins.release.layout import info_path, model_dir, package_run, remove_incomplete

        root = ctx.path(RELEASE_DIR)
        infos: dict[str, dict[str, Any]] = {}
        for entry in self.selected():
            target = model_dir(root, entry.category, entry.name)
            done = info_path(target, entry.name)
            if done.exists():
                log.info("release: %s already packaged, skipped", entry.name)
                infos[entry.name] = read_json(done)
                continue
            remove_incomplete(target, entry.name)
            run_dir = ctx.path("runs", entry.name)
            self.train(entry, run_dir, ctx)
            infos[entry.name] = package_run(run_dir, target, entry=entry, device=str(ctx.device))
            log.info(
                "release: %s packaged (%d parameters, %.2f MB, test accuracy %s)",
                entry.name,
                infos[entry.name]["parameter_count"],
                infos[entry.name]["file_size_bytes"] / 1e6,
                infos[entry.name]["test_accuracy"],
            )
        index = release_index(infos, ctx, self.config)
        atomic_write_json(root / "release.json", index)
        atomic_write_text(root / "README.md", readme(index))
        atomic_write_text(root / "QUICKSTART.md", quickstart(index))
        metrics: dict[str, Any] = {"models": float(len(infos))}
        for name, info in infos.items():
            if info.get("test_accuracy") is not None:
                metrics[f"{name}_test_accuracy"] = float(info["test_accuracy"])
        if self.config.check:
            from mlcore_diffplan_vins.release.check import check_release, format_rows

            rows = check_release(root, max_bytes=int(self.config.max_file_mb * 1e6), device=str(ctx.device))
            ctx.write_json("check.json", to_jsonable([attrs.asdict(r) for r in rows]))
            ctx.write_text("check.txt", format_rows(rows) + "\n")
            failed = [r for r in rows if not r.ok]
            metrics["check_passed"] = float(len(rows) - len(failed))
            if failed:
                raise DataError(
                    f"release check failed for {', '.join(r.name for r in failed)} "
                    f"({failed[0].problems[0]}); see {ctx.path('check.txt')}"
                )
        if self.config.archive:
            from mlcore_diffplan_vins.release.archive import pack_release

            archive = pack_release(root, ctx.path(ARCHIVE))
            metrics["archive_bytes"] = float(archive.stat().st_size)
            log.info("release: packed %s (%.2f MB)", archive, archive.stat().st_size / 1e6)
        ctx.write_text("report.md", readme(index, heading="# Model release run"))
        return metrics

    def train(self, entry: ReleaseEntry, run_dir: Path, ctx: RunContext) -> None:
        """One :func:`mlcore.api.run` of ``entry``'s pipeline into ``run_dir`` (resumes a run already there)."""
        from mlcore import api

        log.info("release: training %s (%s, pipeline %s) -> %s", entry.name, entry.algorithm, entry.pipeline, run_dir)
        api.run(
            PLUGIN,
            pipeline=entry.pipeline,
            profile=self.config.entry_profile,
            overrides=self.overrides_of(entry),
            out=run_dir,
            device=str(ctx.device),
            seed=entry.seed,
            progress=ctx.progress,
        )


# --------------------------------------------------------------------------- release documents


def release_index(infos: dict[str, dict[str, Any]], ctx: RunContext, config: ReleaseConfig) -> dict[str, Any]:
    """``release.json``: what the release holds, model by model (from the info files)."""
    import datetime as dt

    keys = (
        "category",
        "algorithm",
        "model",
        "environment",
        "test_accuracy",
        "validation_accuracy",
        "parameter_count",
        "file_size_bytes",
        "training_time_seconds",
        "epochs",
        "created",
        "notes",
    )
    return {
        "format": 1,
        "plugin": PLUGIN,
        "plugin_version": ctx.meta.get("plugin_version", ""),
        "profile": ctx.profile,
        "entry_profile": config.entry_profile,
        "notes": config.notes,
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "models": {
            name: {
                "path": f"{info['category']}/{name}",
                **{k: info.get(k) for k in keys},
                "test_succ": (info.get("test_metrics") or {}).get("succ"),
                "test_opt": (info.get("test_metrics") or {}).get("opt"),
            }
            for name, info in infos.items()
        },
    }


def _pct(value: Any) -> str:
    return f"{100 * value:.1f}" if isinstance(value, int | float) else "–"


def readme(index: dict[str, Any], heading: str = "# Pretrained differentiable planners (diffplan-vins)") -> str:
    """The release README: what is in it, measured figures per model, how it was made."""
    lines = [heading, ""]
    lines += [
        f"Trained by `mlcore run --plugin diffplan-vins --pipeline release --profile {index['profile']}` "
        f"(each model with its pipeline's `{index['entry_profile']}` profile), plugin version "
        f"{index['plugin_version'] or '?'}, {index['created']}.",
        "",
    ]
    if index["notes"]:
        lines += [f"*Notes:* {index['notes']}", ""]
    lines += [
        "Accuracy is the share of start cells (grid) or nodes (graph) whose first action is optimal, measured by "
        "`mlcore evaluate` on the test split of the data each model was trained on (validation: the validation "
        "split); %Opt and %Succ are the shares of start cells/nodes from which the greedy policy reaches the goal "
        "on an optimal path, and at all.",
        "",
    ]
    for category in CATEGORIES:
        rows = {n: m for n, m in index["models"].items() if m["category"] == category}
        if not rows:
            continue
        lines += [
            f"## {category}",
            "",
            "| model | algorithm | params | file MB | test acc. % | val. acc. % | %Opt | %Succ | epochs | train s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, m in rows.items():
            lines.append(
                f"| `{name}` | {m['algorithm']} | {m['parameter_count']:,} | {m['file_size_bytes'] / 1e6:.3f} | "
                f"{_pct(m['test_accuracy'])} | {_pct(m['validation_accuracy'])} | {_pct(m.get('test_opt'))} | "
                f"{_pct(m.get('test_succ'))} | {m['epochs']} | "
                f"{m['training_time_seconds']:.0f} |"
            )
        lines += [""]
        envs = sorted({m["environment"] for m in rows.values()})
        lines += [f"Trained on: {'; '.join(envs)}.", ""]
    lines += [
        "Each model directory holds `checkpoints/best.pt` (weights and metadata, loadable with "
        "`torch.load(weights_only=True)`), `config.toml` (the training run's config), `<name>_info.json`, "
        "`evaluation/metrics.json` and the training run's `report.md`. See QUICKSTART.md.",
        "",
    ]
    return "\n".join(lines)


def quickstart(index: dict[str, Any]) -> str:
    """QUICKSTART.md: load a model in Python, check and evaluate from the command line."""
    first = next(iter(index["models"]), "VIN_maze15")
    path = index["models"].get(first, {}).get("path", f"grid/{first}")
    return "\n".join(
        [
            "# Quick start",
            "",
            "```",
            "pip install ./packages/mlcore ./plugins/diffplan-vins   # from the mlcore repository",
            "export MLCORE_PRETRAINED=$PWD/pretrained_models      # or pretrained_models.tar.gz",
            "mlcore diffplan-vins check-release $MLCORE_PRETRAINED   # load, run, evaluate and size every model",
            f"mlcore evaluate -k $MLCORE_PRETRAINED/{path}/checkpoints/best.pt --out eval-{first}",
            "```",
            "",
            "```python",
            "from mlcore_diffplan_vins.release import load_pretrained",
            "",
            f'loaded = load_pretrained("{first}")        # source= a directory or .tar.gz; never the network',
            "model = loaded.model                        # eval mode",
            'print(loaded.info["test_accuracy"], loaded.info["parameter_count"])',
            "```",
            "",
            "Released models: " + ", ".join(f"`{n}`" for n in index["models"]) + ".",
            "",
        ]
    )
