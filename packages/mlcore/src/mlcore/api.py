"""The public Python API; every CLI command is a thin wrapper over a function here.

==========================  ==========================================
CLI                         Python
==========================  ==========================================
``mlcore run --plugin P``   :func:`run`
``mlcore train --config``   :func:`train`
``mlcore evaluate``         :func:`evaluate`
``mlcore export``           :func:`export`
``mlcore data generate``    :func:`generate_data`
``mlcore compare``          :func:`compare`
``mlcore show KIND NAME``   :func:`build` / ``get_registry().get(kind, name)``
==========================  ==========================================
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import attrs

from mlcore.config import apply_overrides, layer_configs, load_file, parse_override, structure, unstructure
from mlcore.errors import CheckpointError, ConfigError, MlcoreError
from mlcore.registry import get_registry

log = logging.getLogger(__name__)

DEFAULT_PROFILE = "quick"


@attrs.define
class RunSettings:
    """The ``[run]`` table of a run's ``config.toml``: what ran, with which seed and device."""

    plugin: str = ""
    pipeline: str = ""
    profile: str = DEFAULT_PROFILE
    seed: int = 0
    device: str = "auto"


@attrs.define
class ResolvedRun:
    """A fully resolved run: the pipeline spec, its structured config and the ``[run]`` settings."""

    settings: RunSettings
    spec: Any
    config: Any

    def to_document(self) -> dict[str, Any]:
        """The ``config.toml`` document: ``[run]`` plus the pipeline config's tables."""
        return {"run": unstructure(self.settings), **(unstructure(self.config) or {})}


@attrs.define
class RunResult:
    """What :func:`run` returns: where the run lives and its headline metrics."""

    out_dir: Path
    metrics: dict[str, Any]
    seconds: float
    settings: RunSettings


def build(kind: str, name: str, config: Any = None, /, **kwargs: Any) -> Any:
    """Build a registered component: ``build("model", "trc", {"size": "small"})``.

    ``config`` may be ``None`` (defaults), a mapping (validated strictly) or a config instance.
    """
    spec = get_registry().get(kind, name)
    if config is None or isinstance(config, Mapping):
        config = spec.make_config(dict(config or {}), where=f"{kind}.")
    return spec.build(config, **kwargs)


def _pipeline_spec(plugin: str, pipeline: str | None) -> Any:
    reg = get_registry()
    pipelines = reg.pipelines(plugin)
    if not pipelines:
        raise ConfigError(f"plugin {plugin!r} registers no pipeline (see `mlcore list pipeline`)")
    if pipeline is None:
        return pipelines[0]
    for spec in pipelines:
        if spec.name == pipeline:
            return spec
    names = ", ".join(s.name for s in pipelines)
    raise ConfigError(f"plugin {plugin!r} has no pipeline {pipeline!r} (available: {names})")


def resolve(
    plugin: str | None = None,
    *,
    pipeline: str | None = None,
    profile: str | None = None,
    config: str | Path | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    seed: int | None = None,
    device: str | None = None,
) -> ResolvedRun:
    """Resolve a run's config: defaults < profile < config file < ``overrides``; explicit args win for ``[run]``."""
    doc: dict[str, Any] = {}
    source = ""
    if isinstance(config, Mapping):
        doc = dict(config)
    elif config is not None:
        doc = load_file(config)
        source = f"{config}: "
    run_only: list[str] = []  # the [run] table is needed first; the other overrides layer in below
    rest: list[str] = []
    for item in overrides:
        path = parse_override(item)[0]
        (run_only if len(path) > 1 and path[0] == "run" else rest).append(item)
    doc = apply_overrides(doc, run_only)
    run_table = doc.pop("run", {}) or {}
    if not isinstance(run_table, Mapping):
        raise ConfigError(f"{source}[run] must be a table")
    try:
        settings = structure(RunSettings, run_table, where="run.")
    except ConfigError as exc:
        raise ConfigError(f"{source}{exc}") from None
    if plugin is not None:
        if settings.plugin and settings.plugin != plugin and config is not None:
            log.warning("--plugin %s overrides run.plugin=%s from the config file", plugin, settings.plugin)
        settings.plugin = plugin
    if not settings.plugin:
        raise ConfigError("no plugin given: pass --plugin NAME or set run.plugin in the config (see `mlcore plugins`)")
    spec = _pipeline_spec(settings.plugin, pipeline or settings.pipeline or None)
    settings.pipeline = spec.name
    if profile is not None:
        settings.profile = profile
    if settings.profile not in spec.profiles and settings.profile != "default":
        if spec.profiles:
            allowed = ", ".join([*spec.profiles, "default"])
            raise ConfigError(
                f"profile={settings.profile!r} is not allowed for pipeline {spec.name!r} (allowed: {allowed})"
            )
        settings.profile = "default"
    if seed is not None:
        settings.seed = seed
    if device is not None:
        settings.device = device
    cls = spec.config_class()
    merged = layer_configs(cls, spec.profiles.get(settings.profile, {}), doc, rest)
    try:
        cfg = structure(cls, merged) if cls is not None else None
    except ConfigError as exc:
        raise ConfigError(f"{source}{exc}") from None
    return ResolvedRun(settings=settings, spec=spec, config=cfg)


def run(
    plugin: str | None = None,
    *,
    pipeline: str | None = None,
    profile: str | None = None,
    config: str | Path | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    device: str | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> RunResult:
    """Run a plugin's pipeline end to end (``mlcore run``); returns the run directory and metrics.

    Re-running into an existing ``out`` with the same config resumes it (the trainer picks up
    ``checkpoints/last.pt``); a different config there is refused.
    """
    from mlcore.config import dumps_toml
    from mlcore.devices import resolve_device
    from mlcore.io import atomic_write_json, atomic_write_text, to_jsonable
    from mlcore.runs import RunContext, default_run_dir, environment_record
    from mlcore.seeding import seed_everything

    resolved = resolve(
        plugin, pipeline=pipeline, profile=profile, config=config, overrides=overrides, seed=seed, device=device
    )
    settings = resolved.settings
    torch_device = resolve_device(settings.device)
    out_dir = Path(out) if out is not None else default_run_dir(settings.plugin, settings.pipeline)
    text = dumps_toml(resolved.to_document())
    config_path = out_dir / "config.toml"
    if config_path.exists():
        previous = load_file(config_path)
        if unstructure(previous) != unstructure(resolved.to_document()):
            raise ConfigError(
                f"{out_dir} already holds a run with a different config; pick another --out, "
                f"or resume it with --config {config_path}"
            )
        log.info("resuming the run in %s", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_path, text)
    handler = _attach_log_file(out_dir / "run.log")
    try:
        info = get_registry().plugin(settings.plugin)
        atomic_write_json(
            out_dir / "environment.json",
            environment_record(device=torch_device, seed=settings.seed, plugins=[settings.plugin, "mlcore"]),
        )
        seed_everything(settings.seed)
        ctx = RunContext(
            out_dir=out_dir,
            device=torch_device,
            seed=settings.seed,
            plugin=settings.plugin,
            pipeline=settings.pipeline,
            profile=settings.profile,
            config=resolved.config,
            meta={"plugin": settings.plugin, "plugin_version": info.version, "pipeline": settings.pipeline},
            progress=progress,
        )
        log.info(
            "running %s/%s (profile %s) on %s, seed %d -> %s",
            settings.plugin,
            settings.pipeline,
            settings.profile,
            torch_device,
            settings.seed,
            out_dir,
        )
        start = time.perf_counter()
        pipe = resolved.spec.build(resolved.config)
        metrics = pipe.run(ctx) or {}
        seconds = time.perf_counter() - start
        summary = {
            "plugin": settings.plugin,
            "pipeline": settings.pipeline,
            "profile": settings.profile,
            "seed": settings.seed,
            "device": str(torch_device),
            "seconds": seconds,
            "metrics": metrics,
        }
        atomic_write_json(out_dir / "summary.json", summary)
        if not (out_dir / "metrics.json").exists():
            atomic_write_json(out_dir / "metrics.json", metrics)
        log.info("done in %.1f s: %s", seconds, out_dir)
        return RunResult(out_dir=out_dir, metrics=to_jsonable(metrics), seconds=seconds, settings=settings)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _attach_log_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler


def train(
    config: str | Path | Mapping[str, Any],
    *,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    device: str | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> RunResult:
    """Train from a ``[dataset]/[model]/[loss]/[trainer]/[evaluator]`` config (``mlcore train``)."""
    return run(
        "mlcore",
        pipeline="train",
        profile="default",
        config=config,
        overrides=overrides,
        out=out,
        device=device,
        seed=seed,
        progress=progress,
    )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load an mlcore checkpoint (``torch.load(weights_only=True)``) with a clear error if it is not one."""
    from mlcore.training.checkpoint import load_checkpoint as _load

    return _load(path)


def _component(ckpt: Mapping[str, Any], kind: str, path: str | Path) -> tuple[str, dict[str, Any]] | None:
    section = (ckpt.get("meta") or {}).get("components", {}).get(kind)
    if section is None:
        return None
    if not isinstance(section, Mapping) or "name" not in section:
        raise CheckpointError(f"{path}: checkpoint metadata for the {kind} is malformed")
    return section["name"], dict(section.get("config") or {})


def rebuild_data(ckpt: Mapping[str, Any], path: str | Path, overrides: Sequence[str] = ()) -> Any:
    """The data module a checkpoint was trained on, with its saved state (normalisation) restored."""
    found = _component(ckpt, "dataset", path)
    if found is None:
        raise CheckpointError(f"{path}: checkpoint names no dataset, so it cannot be evaluated without one")
    name, cfg = found
    cfg = apply_overrides(cfg, overrides)
    data = build("dataset", name, cfg)
    state = (ckpt.get("meta") or {}).get("data_state")
    if state:
        data.load_state_dict(state)
    return data.prepare()


def evaluate(
    checkpoint: str | Path,
    *,
    out_dir: str | Path | None = None,
    device: str = "auto",
    evaluator: str | None = None,
    data_overrides: Sequence[str] = (),
) -> dict[str, float]:
    """Evaluate a checkpoint with the evaluator and data it was trained with (``mlcore evaluate``).

    Results go to ``<out_dir>/metrics.json`` (default: the checkpoint's run directory ``evaluation/``).
    """
    from mlcore.devices import resolve_device
    from mlcore.training.checkpoint import build_model

    path = Path(checkpoint)
    ckpt = load_checkpoint(path)
    torch_device = resolve_device(device)
    ev_cfg: dict[str, Any] = {}
    if evaluator is not None:
        ev_name = evaluator
    else:
        found = _component(ckpt, "evaluator", path)
        if found is None:
            raise CheckpointError(f"{path}: checkpoint names no evaluator; pass one with --evaluator NAME")
        ev_name, ev_cfg = found
    ev = build("evaluator", ev_name, ev_cfg)
    target = Path(out_dir) if out_dir is not None else path.parent.parent / "evaluation"
    target.mkdir(parents=True, exist_ok=True)
    if hasattr(ev, "evaluate_checkpoint"):
        metrics = ev.evaluate_checkpoint(ckpt, device=torch_device, out_dir=target)
    else:
        model = build_model(ckpt, device=torch_device)
        data = rebuild_data(ckpt, path, data_overrides)
        metrics = ev.evaluate(model, data, device=torch_device, out_dir=target)
    from mlcore.io import atomic_write_json

    atomic_write_json(target / "metrics.json", metrics)
    return dict(metrics)


def export(
    checkpoint: str | Path,
    *,
    format: str = "onnx",
    out: str | Path | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    onnx_exporter: str = "auto",
) -> Any:
    """Export a checkpoint's model to TorchScript or ONNX and verify it against eager outputs.

    ``onnx_exporter``: ``"auto"`` (torch.export-based, falling back to legacy), ``"dynamo"`` or
    ``"legacy"`` (the TorchScript-based exporter: several times faster to run, deprecated by torch).
    Returns an :class:`mlcore.export.ExportResult` (path, max abs diff, tolerance, ok).
    """
    from mlcore.export import export_model
    from mlcore.training.checkpoint import build_model

    formats = ("torchscript", "onnx")
    if format not in formats:
        raise ConfigError(f"format={format!r} is not allowed (allowed: {', '.join(formats)})")
    path = Path(checkpoint)
    ckpt = load_checkpoint(path)
    model = build_model(ckpt, device="cpu").eval()
    if not hasattr(model, "example_input"):
        raise MlcoreError(f"{path}: model {type(model).__name__} defines no example_input(), so it cannot be exported")
    suffix = ".onnx" if format == "onnx" else ".ts"
    target = Path(out) if out is not None else path.with_suffix(suffix)
    example = cast(Any, model).example_input(2)
    return export_model(model, example, target, format=format, atol=atol, rtol=rtol, onnx_exporter=onnx_exporter)


def generate_data(
    dataset: str,
    out: str | Path,
    *,
    num_samples: int | None = None,
    seed: int | None = None,
    overrides: Sequence[str] = (),
) -> list[Path]:
    """Write a dataset's files under ``out`` (``mlcore data generate``); returns the paths."""
    spec = get_registry().get("dataset", dataset)
    cls = spec.config_class()
    values: dict[str, Any] = apply_overrides({}, overrides)
    names = {f.name for f in attrs.fields(cls)} if cls is not None else set()
    for key, value in (("num_samples", num_samples), ("seed", seed)):
        if value is None:
            continue
        if key not in names:
            flag = key.replace("_", "-")
            raise ConfigError(f"dataset {dataset!r} has no {key!r} option, so --{flag} does not apply")
        values[key] = value
    data = spec.build(spec.make_config(values, where="dataset."))
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [Path(p) for p in data.generate(out_dir)]


def compare(run_dirs: Iterable[str | Path]) -> list[dict[str, Any]]:
    """One row per run: metrics, parameters, training time, epochs-to-best and the config keys that differ.

    Differing config keys appear as ``config.<table>.<key>`` (``mlcore compare``).
    """
    from mlcore.comparison import compare_runs

    return compare_runs([Path(d) for d in run_dirs])
