"""The plugin conformance kit: :class:`PluginContract` generates pytest tests for every component.

Subclass it in a plugin's test suite, name the plugin, and give small configs::

    # tests/test_conformance.py
    from mlcore.testing import PluginContract

    class TestConformance(PluginContract):
        plugin = "trc-control"
        config_overrides = {"dataset/lqr": {"num_samples": 128}, "model/trc": {"size": "small"}}
        model_datasets = {"trc": "lqr"}      # which dataset feeds which model

Each check is its own test, parametrized by component name (``test_model_trains[trc]``):

========================================  =================================================================
test                                      what it proves
========================================  =================================================================
``test_plugin_loads``                     the plugin loaded (not failed/disabled) and registers components
``test_plugin_declares_api``              its entry-point module declares ``MLCORE_API``
``test_component_loads[kind/name]``       implementation and config class import; default config builds
``test_dataset_contract[name]``           ``prepare()``; non-empty ``train_set``; items are ``(inputs, targets)``;
                                          a batch collates; ``state_dict`` is checkpoint-safe and round-trips
``test_model_forward[name]``              builds; forward pass on a real collated batch gives finite outputs
``test_model_loss_finite[name]``          ``compute_loss`` (or the loss) is a finite scalar with finite gradients
``test_model_trains[name]``               ~20 Adam steps on one tiny batch lower the loss
``test_model_checkpoint_roundtrip[name]`` save/load/``build_model`` gives identical outputs and data state
``test_model_example_input[name]``        ``example_input(b)`` matches the data and works for b = 1 and 3
``test_loss_contract[name]``              a finite scalar with a gradient
``test_evaluator_metrics[name]``          on a quickly trained model returns every declared metric, finite,
                                          and writes ``metrics.json``
``test_trainer_fits[name]``               fits 2 epochs into a temporary run dir; best.pt / last.pt exist
``test_pipeline_profile[name-quick]``     ``quick`` and ``full`` profiles exist and structure over the defaults
``test_tracker_builds[name]`` /           builds from its default config and derives from the base class
``test_callback_builds[name]``
========================================  =================================================================

Class attributes tune the checks (all optional except ``plugin``): ``config_overrides``,
``model_datasets``, ``model_losses`` (model -> loss name; default: the spec's ``extras["loss"]``
or ``mse``), ``evaluator_models`` / ``trainer_models`` (component -> model name), ``batch_size``,
``train_steps``, ``train_lr``, ``min_improvement``, ``loss_inputs`` (loss name -> callable returning
``(prediction, target)``), ``skip`` (``{"test_model_trains[x]" or "model/x": reason}``) and ``slow``
(same keys; marks those tests ``slow``).

The checks are plain functions too (``check_dataset``, ``check_model_trains``, ...), raising
:class:`ContractError` with a message that says what to fix.
"""

from __future__ import annotations

import inspect
import io
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from mlcore.errors import MlcoreError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mlcore.components import ComponentSpec
    from mlcore.data import DataModule
    from mlcore.registry import Registry

__all__ = [
    "ContractError",
    "PluginContract",
    "check_callback",
    "check_checkpoint_roundtrip",
    "check_dataset",
    "check_evaluator",
    "check_example_input",
    "check_loss",
    "check_model_forward",
    "check_model_loss",
    "check_model_trains",
    "check_pipeline_profile",
    "check_tracker",
    "check_trainer",
    "first_batch",
    "model_loss",
    "train_steps",
]


class ContractError(AssertionError):
    """A component does not honour the mlcore contract; the message says what and how to fix it."""


# --------------------------------------------------------------------------- small helpers


def _tensors(obj: Any) -> list[torch.Tensor]:
    """Every tensor inside nested dicts/lists/tuples."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, Mapping):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, list | tuple):
        return [t for v in obj for t in _tensors(v)]
    return []


def _all_finite(obj: Any) -> bool:
    return all(bool(t.detach().isfinite().all()) for t in _tensors(obj) if t.is_floating_point() or t.is_complex())


def _same(a: Any, b: Any) -> bool:
    """Structural equality of nested data with tensors compared by value."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a.cpu(), b.cpu()))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def first_batch(data: DataModule, batch_size: int = 8) -> Any:
    """The first collated batch of ``data.train_set()`` (no shuffling), as the trainer would see it."""
    from torch.utils.data import DataLoader

    loader = DataLoader(data.train_set(), batch_size=batch_size, shuffle=False, collate_fn=data.collate_fn)
    try:
        return next(iter(loader))
    except StopIteration:
        raise ContractError(f"{type(data).__name__}.train_set() yields no batch") from None


def _split(batch: Any, who: str) -> tuple[Any, Any]:
    if not isinstance(batch, list | tuple) or len(batch) != 2:
        raise ContractError(f"{who}: a collated batch must be (inputs, targets), got {type(batch).__name__}")
    return batch[0], batch[1]


def model_loss(model: nn.Module, batch: Any, loss_fn: Callable[..., Any]) -> torch.Tensor:
    """The loss the trainer would optimise: ``model.compute_loss(batch, loss_fn)`` or ``loss_fn(model(x), y)``."""
    import torch

    compute = getattr(model, "compute_loss", None)
    if callable(compute):
        out = compute(batch, loss_fn)
        if isinstance(out, tuple):
            if len(out) != 2 or not isinstance(out[1], Mapping):
                raise ContractError(
                    f"{type(model).__name__}.compute_loss must return a tensor or (tensor, dict), "
                    f"got a {len(out)}-tuple"
                )
            out = out[0]
    else:
        inputs, targets = _split(batch, type(model).__name__)
        out = loss_fn(model(inputs), targets)
    if not isinstance(out, torch.Tensor):
        raise ContractError(f"{type(model).__name__}: the loss is a {type(out).__name__}, expected a scalar tensor")
    return out


# --------------------------------------------------------------------------- checks


def check_dataset(data: DataModule, rebuild: Callable[[], DataModule] | None = None, *, batch_size: int = 4) -> None:
    """Check a data module: it prepares, has a non-empty training split of ``(inputs, targets)``
    items that collate, and a ``state_dict`` that survives ``torch.load(weights_only=True)`` and
    ``load_state_dict`` on a fresh instance made by ``rebuild``."""
    import torch

    from mlcore.data import DataModule

    name = type(data).__name__
    if not isinstance(data, DataModule):
        raise ContractError(f"{name} must derive from mlcore.data.DataModule")
    data.prepare()
    train = data.train_set()
    try:
        n = len(train)  # type: ignore[arg-type]
    except TypeError:
        raise ContractError(f"{name}.train_set() must be a sized torch Dataset") from None
    if n == 0:
        raise ContractError(f"{name}.train_set() is empty")
    item = train[0]
    inputs, targets = _split(item, f"{name}.train_set()[0]")
    if not _tensors(inputs) or not _tensors(targets):
        raise ContractError(f"{name}: items must hold tensors in both inputs and targets")
    if not _all_finite(item):
        raise ContractError(f"{name}.train_set()[0] holds NaN or inf")
    batch = first_batch(data, batch_size)
    _split(batch, name)
    state = data.state_dict()
    if not isinstance(state, Mapping):
        raise ContractError(f"{name}.state_dict() must return a dict, got {type(state).__name__}")
    from mlcore.training.checkpoint import plain

    buf = io.BytesIO()
    try:
        torch.save(plain(dict(state), "data_state"), buf)
        buf.seek(0)
        loaded = torch.load(buf, weights_only=True)
    except Exception as exc:
        raise ContractError(f"{name}.state_dict() cannot be stored in a checkpoint: {exc}") from None
    if rebuild is not None:
        fresh = rebuild()
        fresh.load_state_dict(loaded)
        fresh.prepare()
        again = fresh.state_dict()
        if not _same(plain(dict(again)), plain(dict(state))):
            raise ContractError(f"{name}: state_dict() differs after load_state_dict() + prepare() on a fresh instance")


def check_model_forward(model: nn.Module, batch: Any) -> Any:
    """Forward the batch's inputs in eval mode; outputs must hold finite tensors of the batch size."""
    import torch
    from torch import nn

    name = type(model).__name__
    if not isinstance(model, nn.Module):
        raise ContractError(f"{name} must be a torch.nn.Module")
    if not any(p.requires_grad for p in model.parameters()):
        raise ContractError(f"{name} has no trainable parameters")
    inputs, _ = _split(batch, name)
    model.eval()
    with torch.no_grad():
        out = model(inputs)
    tensors = _tensors(out)
    if not tensors:
        raise ContractError(f"{name}.forward returned no tensor (got {type(out).__name__})")
    if not _all_finite(out):
        raise ContractError(f"{name}.forward returned NaN or inf on a real batch")
    return out


def check_model_loss(model: nn.Module, batch: Any, loss_fn: Callable[..., Any]) -> float:
    """The training loss on a batch is a finite scalar whose gradients are finite and reach the parameters."""
    name = type(model).__name__
    model.train()
    model.zero_grad(set_to_none=True)
    loss = model_loss(model, batch, loss_fn)
    if loss.numel() != 1:
        raise ContractError(f"{name}: the loss must be a scalar, got shape {tuple(loss.shape)}")
    value = float(loss.detach())
    if not math.isfinite(value):
        raise ContractError(f"{name}: the loss is not finite ({value}) on a real batch")
    if not loss.requires_grad:
        raise ContractError(f"{name}: the loss does not require grad (is the output detached?)")
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    if not grads:
        raise ContractError(f"{name}: no parameter received a gradient from the loss")
    if not all(bool(g.isfinite().all()) for g in grads):
        raise ContractError(f"{name}: the loss produced NaN or inf gradients")
    model.zero_grad(set_to_none=True)
    return value


def train_steps(
    model: nn.Module, batch: Any, loss_fn: Callable[..., Any], *, steps: int = 20, lr: float = 3e-3, seed: int = 0
) -> None:
    """``steps`` Adam steps on one batch (seeded); fails if the loss becomes non-finite."""
    import torch

    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for step in range(steps):
        torch.manual_seed(seed + 1 + step)
        optimizer.zero_grad(set_to_none=True)
        loss = model_loss(model, batch, loss_fn)
        if not bool(torch.isfinite(loss.detach()).all()):
            raise ContractError(f"{type(model).__name__}: the loss became non-finite at training step {step + 1}")
        loss.backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def check_model_trains(
    model: nn.Module,
    batch: Any,
    loss_fn: Callable[..., Any],
    *,
    steps: int = 20,
    lr: float = 3e-3,
    min_improvement: float = 0.01,
    seed: int = 0,
) -> tuple[float, float]:
    """``steps`` Adam steps on one batch must lower the (train-mode) loss by ``min_improvement`` (relative).

    Returns ``(loss_before, loss_after)``.
    """
    import torch

    name = type(model).__name__

    def measure() -> float:
        torch.manual_seed(seed)  # same dropout masks for both measurements
        with torch.no_grad():
            return float(model_loss(model, batch, loss_fn).detach())

    model.train()
    before = measure()
    train_steps(model, batch, loss_fn, steps=steps, lr=lr, seed=seed)
    after = measure()
    if not (math.isfinite(before) and math.isfinite(after)):
        raise ContractError(f"{name}: the loss is not finite (before {before}, after {after})")
    if not after < before - min_improvement * abs(before):
        raise ContractError(
            f"{name} does not learn: {steps} Adam steps (lr {lr}) on one batch took the loss from "
            f"{before:.6g} to {after:.6g} (needed a {min_improvement:.0%} decrease)"
        )
    return before, after


def _outputs_equal(a: Any, b: Any) -> bool:
    import torch

    ta, tb = _tensors(a), _tensors(b)
    return len(ta) == len(tb) and all(
        x.shape == y.shape and bool(torch.allclose(x, y, rtol=1e-5, atol=1e-7, equal_nan=True))
        for x, y in zip(ta, tb, strict=True)
    )


def check_checkpoint_roundtrip(
    model: nn.Module,
    batch: Any,
    *,
    path: str | Path,
    plugin: str,
    model_name: str,
    model_config: Any,
    data: DataModule | None = None,
    dataset_name: str | None = None,
    dataset_config: Any = None,
) -> None:
    """Save with :func:`~mlcore.training.checkpoint.save_checkpoint`, load, :func:`build_model` and compare outputs."""
    import torch

    from mlcore.training.checkpoint import build_model, load_checkpoint, make_meta, save_checkpoint

    components: dict[str, tuple[str, Any]] = {"model": (model_name, model_config)}
    if data is not None and dataset_name is not None:
        components["dataset"] = (dataset_name, dataset_config)
    meta = make_meta(plugin=plugin, components=components, data=data)
    inputs, _ = _split(batch, type(model).__name__)
    model.eval()
    with torch.no_grad():
        expected = model(inputs)
    save_checkpoint(path, model=model, meta=meta)
    ckpt = load_checkpoint(path)
    torch.manual_seed(12345)  # a rebuilt model that ignored the weights would differ
    rebuilt = build_model(ckpt, expect=model_name)
    if type(rebuilt) is not type(model):
        raise ContractError(f"checkpoint rebuilt a {type(rebuilt).__name__}, expected {type(model).__name__}")
    rebuilt.eval()
    with torch.no_grad():
        got = rebuilt(inputs)
    if not _outputs_equal(expected, got):
        raise ContractError(f"{type(model).__name__}: outputs differ after a checkpoint round trip")
    if data is not None:
        saved = ckpt["meta"].get("data_state", {})
        from mlcore.training.checkpoint import plain

        if not _same(saved, plain(dict(data.state_dict()))):
            raise ContractError(
                f"{type(data).__name__}: the data state stored in the checkpoint differs from state_dict()"
            )


def check_example_input(model: nn.Module, batch: Any | None = None) -> None:
    """``example_input(b)`` works for b = 1 and 3 and matches the real inputs' shapes and dtypes."""
    import torch

    name = type(model).__name__
    factory = getattr(model, "example_input", None)
    if not callable(factory):
        raise ContractError(f"{name} defines no example_input(batch_size)")
    model.eval()
    for b in (1, 3):
        example = factory(b)
        tensors = _tensors(example)
        if not tensors or not isinstance(example, torch.Tensor | tuple):
            raise ContractError(f"{name}.example_input({b}) must return a tensor or a tuple of tensors")
        if any(t.dim() == 0 or t.shape[0] != b for t in tensors):
            raise ContractError(f"{name}.example_input({b}) must have batch size {b} in dim 0")
        args = example if isinstance(example, tuple) else (example,)
        with torch.no_grad():
            out = model(*args)
        if any(t.dim() > 0 and t.shape[0] != b for t in _tensors(out)):
            raise ContractError(f"{name}: output of example_input({b}) does not keep the batch size")
    if batch is not None:
        inputs, _ = _split(batch, name)
        real = _tensors(inputs)
        example = _tensors(factory(2))
        if len(real) == len(example):
            for r, e in zip(real, example, strict=True):
                if r.shape[1:] != e.shape[1:] or r.dtype != e.dtype:
                    raise ContractError(
                        f"{name}.example_input gives {tuple(e.shape[1:])}/{e.dtype} per sample, "
                        f"the data gives {tuple(r.shape[1:])}/{r.dtype}"
                    )


def check_loss(loss_fn: Callable[..., Any], prediction: torch.Tensor | Any, target: Any) -> float:
    """``loss_fn(prediction, target)`` is a finite scalar with a finite gradient w.r.t. the prediction."""
    import torch

    name = type(loss_fn).__name__
    leaves = [t for t in _tensors(prediction) if t.is_floating_point()]
    for t in leaves:
        t.requires_grad_(True)
    value = loss_fn(prediction, target)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ContractError(f"{name} must return a scalar tensor, got {getattr(value, 'shape', type(value).__name__)}")
    if not bool(torch.isfinite(value.detach()).all()):
        raise ContractError(f"{name} returned a non-finite value")
    if not value.requires_grad:
        raise ContractError(f"{name}: the value carries no gradient")
    value.backward()
    grads = [t.grad for t in leaves if t.grad is not None]
    if not grads or not all(bool(g.isfinite().all()) for g in grads):
        raise ContractError(f"{name}: no finite gradient reaches the prediction")
    return float(value.detach())


def check_evaluator(evaluator: Any, model: nn.Module, data: DataModule, out_dir: str | Path) -> dict[str, float]:
    """``evaluate()`` returns a flat dict with every declared metric, finite, and writes ``metrics.json``."""
    name = type(evaluator).__name__
    declared = tuple(getattr(evaluator, "metrics", ()) or ())
    if not declared:
        raise ContractError(f"{name} declares no metrics (set the class attribute `metrics = (...)`)")
    result = evaluator.evaluate(model, data, device="cpu", out_dir=Path(out_dir))
    if not isinstance(result, Mapping):
        raise ContractError(f"{name}.evaluate must return a dict, got {type(result).__name__}")
    missing = [m for m in declared if m not in result]
    if missing:
        raise ContractError(f"{name}.evaluate did not return declared metrics {missing}")
    for key, value in result.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ContractError(f"{name}: metric {key!r} is not a number ({value!r})") from None
        if key in declared and not math.isfinite(number):
            raise ContractError(f"{name}: metric {key!r} is not finite ({number})")
    if not (Path(out_dir) / "metrics.json").is_file():
        raise ContractError(f"{name}.evaluate(out_dir=...) must write metrics.json there (see Evaluator.finish)")
    return dict(result)


def check_trainer(
    trainer: Any, model: nn.Module, data: DataModule, loss_fn: Callable[..., Any], run_dir: Path, meta: dict[str, Any]
) -> Any:
    """``fit()`` runs and leaves ``checkpoints/best.pt`` and ``checkpoints/last.pt`` in ``run_dir``."""
    name = type(trainer).__name__
    result = trainer.fit(model, data, loss_fn, run_dir=run_dir, meta=meta)
    for ckpt in ("best.pt", "last.pt"):
        if not (run_dir / "checkpoints" / ckpt).is_file():
            raise ContractError(f"{name}.fit did not write checkpoints/{ckpt}")
    return result


def check_pipeline_profile(spec: ComponentSpec, profile: str) -> Any:
    """The pipeline ships ``profile`` and it structures over the default config."""
    from mlcore.config import layer_configs, structure

    if profile not in spec.profiles:
        have = ", ".join(spec.profiles) or "none"
        raise ContractError(f"pipeline {spec.name!r} has no {profile!r} profile (it has: {have})")
    cls = spec.config_class()
    if cls is None:
        if spec.profiles[profile]:
            raise ContractError(f"pipeline {spec.name!r} takes no config but its {profile!r} profile sets values")
        return None
    try:
        merged = layer_configs(cls, spec.profiles[profile], {})
        return structure(cls, merged)
    except MlcoreError as exc:
        raise ContractError(f"pipeline {spec.name!r}, profile {profile!r}: {exc}") from None


def check_tracker(tracker: Any) -> None:
    """A tracker derives from :class:`mlcore.training.tracking.Tracker`."""
    from mlcore.training.tracking import Tracker

    if not isinstance(tracker, Tracker):
        raise ContractError(f"{type(tracker).__name__} must derive from mlcore.training.tracking.Tracker")


def check_callback(callback: Any) -> None:
    """A callback derives from :class:`mlcore.training.Callback`."""
    from mlcore.training.callbacks import Callback

    if not isinstance(callback, Callback):
        raise ContractError(f"{type(callback).__name__} must derive from mlcore.training.callbacks.Callback")


# --------------------------------------------------------------------------- the test-class generator

#: test method -> (argument name, component kind)
_PARAMETRIZED: dict[str, tuple[str, str]] = {
    "test_component_loads": ("component", ""),
    "test_dataset_contract": ("dataset_name", "dataset"),
    "test_model_forward": ("model_name", "model"),
    "test_model_loss_finite": ("model_name", "model"),
    "test_model_trains": ("model_name", "model"),
    "test_model_checkpoint_roundtrip": ("model_name", "model"),
    "test_model_example_input": ("model_name", "model"),
    "test_loss_contract": ("loss_name", "loss"),
    "test_evaluator_metrics": ("evaluator_name", "evaluator"),
    "test_trainer_fits": ("trainer_name", "trainer"),
    "test_pipeline_profile": ("pipeline_profile", "pipeline"),
    "test_tracker_builds": ("tracker_name", "tracker"),
    "test_callback_builds": ("callback_name", "callback"),
}

#: applied to trainer configs (where the field exists) before ``config_overrides``: short and quiet
TRAINER_DEFAULTS: dict[str, Any] = {"epochs": 2, "progress": False, "trackers": [], "callbacks": [], "plot": False}


class PluginContract:
    """Base class of a plugin's conformance tests; see the module docstring for the checks and knobs."""

    #: the plugin's entry-point name (``mlcore plugins``)
    plugin: ClassVar[str] = ""
    #: ``{"kind/name": {field: value}}`` applied over each component's default config
    config_overrides: ClassVar[dict[str, dict[str, Any]]] = {}
    #: model name -> dataset name (default: ``extras["dataset"]``, else the plugin's only dataset)
    model_datasets: ClassVar[dict[str, str]] = {}
    #: model name -> loss name for models without ``compute_loss`` (default: ``extras["loss"]`` or ``mse``)
    model_losses: ClassVar[dict[str, str]] = {}
    #: evaluator name -> model name (default: ``extras["model"]``, else the plugin's only model)
    evaluator_models: ClassVar[dict[str, str]] = {}
    #: trainer name -> model name (default: ``extras["model"]``, else the plugin's only model)
    trainer_models: ClassVar[dict[str, str]] = {}
    #: loss name -> zero-argument callable returning ``(prediction, target)``
    loss_inputs: ClassVar[dict[str, Callable[[], tuple[Any, Any]]]] = {}
    #: ``{"test_model_trains[x]" or "model/x": reason}`` to skip
    skip: ClassVar[dict[str, str]] = {}
    #: test ids or ``kind/name`` to mark ``slow``
    slow: ClassVar[frozenset[str] | set[str] | tuple[str, ...]] = ()
    batch_size: ClassVar[int] = 8
    train_steps: ClassVar[int] = 20
    train_lr: ClassVar[float] = 3e-3
    min_improvement: ClassVar[float] = 0.01
    profiles: ClassVar[tuple[str, ...]] = ("quick", "full")

    # ----------------------------------------------------------------- collection

    def registry(self) -> Registry:
        """The registry the checks use (the process-wide one)."""
        from mlcore.registry import get_registry

        return get_registry()

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize each check over the plugin's components of its kind (pytest calls this)."""
        entry = _PARAMETRIZED.get(metafunc.function.__name__)
        if entry is None:
            return
        argname, kind = entry
        reg = self.registry()
        info = reg.plugins.get(self.plugin)
        specs = info.components if info is not None and info.status == "ok" else []
        params = []
        for spec in specs:
            if kind and spec.kind != kind:
                continue
            if argname == "pipeline_profile":
                for profile in self.profiles:
                    params.append(self._param((spec.name, profile), f"{spec.name}-{profile}", metafunc, spec))
            elif argname == "component":
                params.append(self._param(spec.qualified_name, spec.qualified_name, metafunc, spec))
            else:
                params.append(self._param(spec.name, spec.name, metafunc, spec))
        metafunc.parametrize(argname, params)

    def _param(self, value: Any, ident: str, metafunc: pytest.Metafunc, spec: ComponentSpec) -> Any:
        test_id = f"{metafunc.function.__name__}[{ident}]"
        keys = (test_id, spec.qualified_name)
        marks: list[Any] = []
        for key in keys:
            if key in self.skip:
                marks.append(pytest.mark.skip(reason=self.skip[key]))
                break
        if any(key in self.slow for key in keys):
            marks.append(pytest.mark.slow)
        return pytest.param(value, id=ident, marks=marks)

    # ----------------------------------------------------------------- building blocks

    def spec(self, kind: str, name: str) -> ComponentSpec:
        """The registered spec of ``kind``/``name``."""
        return self.registry().get(kind, name)

    def component_config(self, spec: ComponentSpec, extra: Mapping[str, Any] | None = None) -> Any:
        """The default config of ``spec`` with ``extra`` and then ``config_overrides`` applied (strictly)."""
        from mlcore.config import deep_merge

        values = deep_merge(dict(extra or {}), self.config_overrides.get(spec.qualified_name, {}))
        if spec.config is None:
            return None
        return spec.make_config(values, where=f"config_overrides[{spec.qualified_name!r}].")

    def build(self, kind: str, name: str, **kwargs: Any) -> Any:
        """Build ``kind``/``name`` from its default config plus ``config_overrides``."""
        spec = self.spec(kind, name)
        config = self.component_config(spec)
        return spec.build(config, **kwargs) if spec.config is not None else spec.build(**kwargs)

    def _cache(self) -> dict[Any, Any]:
        cls = type(self)
        cache = cls.__dict__.get("_mlcore_contract_cache")
        if cache is None:
            cache = {}
            cls._mlcore_contract_cache = cache  # type: ignore[attr-defined]
        return cache  # type: ignore[no-any-return]

    def data(self, name: str) -> DataModule:
        """The prepared data module ``name`` (built once per test class)."""
        key = ("dataset", name, id(self.registry()))
        cache = self._cache()
        if key not in cache:
            import torch

            torch.manual_seed(0)
            cache[key] = self.build("dataset", name).prepare()
        return cache[key]  # type: ignore[no-any-return]

    def _by_extras(self, spec: ComponentSpec, key: str, mapping: Mapping[str, str], kind: str, attr: str) -> str:
        if spec.name in mapping:
            return mapping[spec.name]
        named = spec.extras.get(key)
        if isinstance(named, str) and named:
            return named
        own = [s.name for s in self.registry().components(kind, self.plugin)]
        if len(own) == 1:
            return own[0]
        have = ", ".join(own) or "none"
        raise ContractError(
            f"{spec.qualified_name}: cannot tell which {kind} to use (plugin {self.plugin!r} has: {have}); "
            f"set {attr} = {{{spec.name!r}: '<{kind}>'}} on {type(self).__name__}"
        )

    def dataset_for(self, model_name: str) -> str:
        """The dataset that feeds ``model_name``."""
        return self._by_extras(
            self.spec("model", model_name), "dataset", self.model_datasets, "dataset", "model_datasets"
        )

    def loss_for(self, model_name: str) -> Any:
        """The loss used for ``model_name`` (built)."""
        spec = self.spec("model", model_name)
        name = self.model_losses.get(model_name) or spec.extras.get("loss") or "mse"
        return self.build("loss", name)

    def model_and_batch(self, model_name: str) -> tuple[nn.Module, DataModule, Any]:
        """A freshly built model (seeded), its prepared data module and one tiny real batch."""
        import torch

        data = self.data(self.dataset_for(model_name))
        torch.manual_seed(0)
        model = self.build("model", model_name)
        return model, data, first_batch(data, self.batch_size)

    def trained_model(self, model_name: str) -> tuple[nn.Module, DataModule]:
        """A model quickly trained on one batch (``train_steps`` Adam steps), and its data module."""
        model, data, batch = self.model_and_batch(model_name)
        train_steps(model, batch, self.loss_for(model_name), steps=self.train_steps, lr=self.train_lr)
        return model.eval(), data

    # ----------------------------------------------------------------- plugin-level tests

    def test_plugin_loads(self) -> None:
        """The plugin loaded and registers at least one component."""
        if not self.plugin:
            raise ContractError(f"set `plugin = '<entry-point name>'` on {type(self).__name__}")
        info = self.registry().plugins.get(self.plugin)
        if info is None:
            raise ContractError(f"plugin {self.plugin!r} is not installed (no entry point in group 'mlcore.plugins')")
        if info.status != "ok":
            raise ContractError(f"plugin {self.plugin!r} is {info.status}: {info.reason}")
        if not info.components:
            raise ContractError(f"plugin {self.plugin!r} registers no component")

    def test_plugin_declares_api(self) -> None:
        """The entry-point module declares the core API range it supports (``MLCORE_API``)."""
        info = self.registry().plugins.get(self.plugin)
        if info is None or info.status != "ok":
            pytest.skip("plugin not loaded (see test_plugin_loads)")
        if not info.api:
            raise ContractError(f"plugin {self.plugin!r}: declare MLCORE_API = '>=1.0,<2' in {info.module}")

    def test_component_loads(self, component: str) -> None:
        """Implementation and config class import; the default config (with overrides) builds."""
        kind, _, name = component.partition("/")
        spec = self.spec(kind, name)
        impl = spec.load()
        if not callable(impl):
            raise ContractError(f"{component}: target {spec.target!r} is not callable")
        if not spec.summary.strip():
            raise ContractError(f"{component}: give the spec a one-line summary")
        self.component_config(spec)

    # ----------------------------------------------------------------- per-kind tests

    def test_dataset_contract(self, dataset_name: str) -> None:
        """Prepare, non-empty train split of (inputs, targets), collation, state_dict round trip."""
        import torch

        def rebuild() -> DataModule:
            torch.manual_seed(0)
            return self.build("dataset", dataset_name)  # type: ignore[no-any-return]

        check_dataset(self.data(dataset_name), rebuild, batch_size=min(4, self.batch_size))

    def test_model_forward(self, model_name: str) -> None:
        """A forward pass on a real collated batch gives finite outputs."""
        model, _, batch = self.model_and_batch(model_name)
        check_model_forward(model, batch)

    def test_model_loss_finite(self, model_name: str) -> None:
        """The training loss is a finite scalar with finite gradients."""
        model, _, batch = self.model_and_batch(model_name)
        check_model_loss(model, batch, self.loss_for(model_name))

    def test_model_trains(self, model_name: str) -> None:
        """A few Adam steps on one tiny batch lower the loss."""
        model, _, batch = self.model_and_batch(model_name)
        check_model_trains(
            model,
            batch,
            self.loss_for(model_name),
            steps=self.train_steps,
            lr=self.train_lr,
            min_improvement=self.min_improvement,
        )

    def test_model_checkpoint_roundtrip(self, model_name: str, tmp_path: Path) -> None:
        """save_checkpoint -> load_checkpoint -> build_model reproduces the outputs."""
        model, data, batch = self.model_and_batch(model_name)
        train_steps(model, batch, self.loss_for(model_name), steps=2, lr=self.train_lr)
        ds_name = self.dataset_for(model_name)
        check_checkpoint_roundtrip(
            model,
            batch,
            path=tmp_path / "roundtrip.pt",
            plugin=self.plugin,
            model_name=model_name,
            model_config=self.component_config(self.spec("model", model_name)),
            data=data,
            dataset_name=ds_name,
            dataset_config=self.component_config(self.spec("dataset", ds_name)),
        )

    def test_model_example_input(self, model_name: str) -> None:
        """``example_input`` (needed by ``mlcore export``) fits the data and keeps the batch size."""
        model, _, batch = self.model_and_batch(model_name)
        if not callable(getattr(model, "example_input", None)):
            pytest.skip(f"{type(model).__name__} defines no example_input(), so it cannot be exported")
        check_example_input(model, batch)

    def test_loss_contract(self, loss_name: str) -> None:
        """The loss gives a finite scalar with a gradient on matching inputs."""
        import torch

        loss_fn = self.build("loss", loss_name)
        if loss_name in self.loss_inputs:
            prediction, target = self.loss_inputs[loss_name]()
        else:
            users = [
                s.name
                for s in self.registry().components("model", self.plugin)
                if (self.model_losses.get(s.name) or s.extras.get("loss")) == loss_name
            ]
            if users:
                model, _, batch = self.model_and_batch(users[0])
                inputs, target = _split(batch, type(model).__name__)
                model.train()
                prediction = model(inputs)
            else:
                g = torch.Generator().manual_seed(0)
                prediction = torch.randn(8, 3, generator=g)
                target = torch.randn(8, 3, generator=g)
        check_loss(loss_fn, prediction, target)

    def test_evaluator_metrics(self, evaluator_name: str, tmp_path: Path) -> None:
        """``evaluate()`` on a quickly trained model returns every declared metric, finite."""
        spec = self.spec("evaluator", evaluator_name)
        model_name = self._by_extras(spec, "model", self.evaluator_models, "model", "evaluator_models")
        model, data = self.trained_model(model_name)
        check_evaluator(self.build("evaluator", evaluator_name), model, data, tmp_path)

    def test_trainer_fits(self, trainer_name: str, tmp_path: Path) -> None:
        """``fit()`` for two epochs writes best.pt and last.pt."""
        import torch

        from mlcore.training.checkpoint import make_meta

        spec = self.spec("trainer", trainer_name)
        model_name = self._by_extras(spec, "model", self.trainer_models, "model", "trainer_models")
        ds_name = self.dataset_for(model_name)
        cls = spec.config_class()
        defaults = {}
        if cls is not None:
            import attrs

            fields = {f.name for f in attrs.fields(cls)}
            defaults = {k: v for k, v in TRAINER_DEFAULTS.items() if k in fields}
        config = self.component_config(spec, defaults)
        factory = spec.load()
        params = inspect.signature(factory).parameters
        kwargs = {k: v for k, v in {"device": "cpu", "seed": 0}.items() if k in params}
        trainer = factory(config, **kwargs) if spec.config is not None else factory(**kwargs)
        torch.manual_seed(0)
        model = self.build("model", model_name)
        data = self.data(ds_name)
        meta = make_meta(
            plugin=self.plugin,
            components={
                "model": (model_name, self.component_config(self.spec("model", model_name))),
                "dataset": (ds_name, self.component_config(self.spec("dataset", ds_name))),
            },
            data=data,
        )
        check_trainer(trainer, model, data, self.loss_for(model_name), tmp_path, meta)

    def test_pipeline_profile(self, pipeline_profile: tuple[str, str]) -> None:
        """The pipeline ships the profile and it structures over the defaults."""
        name, profile = pipeline_profile
        check_pipeline_profile(self.spec("pipeline", name), profile)

    def test_tracker_builds(self, tracker_name: str) -> None:
        """The tracker builds from its default config."""
        try:
            tracker = self.build("tracker", tracker_name)
        except MlcoreError as exc:  # an optional dependency that is not installed
            pytest.skip(str(exc))
        check_tracker(tracker)

    def test_callback_builds(self, callback_name: str) -> None:
        """The callback builds from its default config."""
        check_callback(self.build("callback", callback_name))
