"""The pytest side of the conformance kit: :class:`PluginContract` generates tests for every component.

Subclass it in a plugin's test suite, name the plugin, and give small configs::

    # tests/test_conformance.py
    from mlcore.testing import PluginContract

    class TestConformance(PluginContract):
        plugin = "trc-control"
        config_overrides = {"dataset/lqr": {"num_samples": 128}, "model/trc": {"size": "small"}}
        model_datasets = {"trc": "lqr"}      # which dataset feeds which model

Each check is its own test, parametrized by component name (``test_model_trains[trc]``); the
checks themselves are plain functions in :mod:`mlcore.testing.checks` and
:mod:`mlcore.testing.component_checks` (no pytest needed there):

=========================================  ================================================================
test                                       what it proves
=========================================  ================================================================
``test_plugin_loads``                      the plugin loaded (not failed/disabled) and registers components
``test_plugin_declares_api``               its entry-point module declares ``MLCORE_API``
``test_component_loads[kind/name]``        implementation and config class import; default config builds
``test_dataset_contract[name]``            ``prepare()``; non-empty ``train_set``; items are ``(inputs, targets)``;
                                           a batch collates; ``state_dict`` is checkpoint-safe and round-trips
``test_dataset_seed[name]``                (configs with a ``seed`` field) two builds with the same seed give the
                                           same first items, even with other global RNG states; seed + 1
                                           gives different ones
``test_model_forward[name]``               builds; forward pass on a real collated batch gives finite outputs
``test_model_output_shape[name]``          (models without ``compute_loss``) the output has the target's shape
                                           (float targets) or batch size (integer labels), so no loss
                                           broadcasts them; the message names both shapes
``test_model_batch_independent[name]``     in eval mode, changing sample 0's inputs leaves the outputs of the
                                           other samples unchanged (no mixing across the batch)
``test_model_loss_finite[name]``           the training loss (``compute_loss``, else the paired loss) is a
                                           finite scalar with finite gradients
``test_model_trains[name]``                ~20 Adam steps on one tiny batch lower the loss
``test_model_checkpoint_roundtrip[name]``  save/load/``build_model`` gives identical outputs and data state
``test_model_example_input[name]``         ``example_input(b)`` matches the data and works for b = 1 and 3
``test_loss_contract[name]``               a finite scalar with a finite gradient w.r.t. the prediction, on the
                                           output of a model paired with the loss (else random tensors)
``test_evaluator_metrics[name]``           on a quickly trained model returns every declared metric, finite,
                                           and writes ``metrics.json``
``test_trainer_fits[name]``                fits 2 epochs into a temporary run dir; best.pt / last.pt exist
``test_pipeline_profile[name-quick]``      ``quick`` and ``full`` profiles exist and structure over the defaults
``test_tracker_builds[name]`` /            builds from its default config and derives from the base class
``test_callback_builds[name]``
=========================================  ================================================================

Which components go together comes from the specs' ``extras`` (or the class attributes, which win):

- a model spec's ``extras["dataset"]``: the dataset that feeds it (``model_datasets``; default: the
  plugin's only dataset);
- a model spec's ``extras["loss"]``: the loss it trains with when it has no ``compute_loss``
  (``model_losses``; default ``mse``); ``test_loss_contract`` of that loss runs on this model's output;
- an evaluator's or trainer's ``extras["model"]``: the model it evaluates or fits
  (``evaluator_models`` / ``trainer_models``; default: the plugin's only model).

Other class attributes (all optional except ``plugin``): ``config_overrides``, ``batch_size``,
``train_steps``, ``train_lr``, ``min_improvement``, ``loss_inputs`` (loss name -> callable returning
``(prediction, target)``), ``skip`` (``{"test_model_trains[x]" or "model/x": reason}``) and ``slow``
(same keys; marks those tests ``slow``). A dataset whose seed legitimately does not change its
first items (it loads a fixed file) skips ``test_dataset_seed[name]`` with ``skip``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from mlcore.errors import MlcoreError
from mlcore.testing.checks import (
    ContractError,
    _split,
    check_batch_independence,
    check_checkpoint_roundtrip,
    check_dataset,
    check_dataset_seed,
    check_example_input,
    check_model_forward,
    check_model_loss,
    check_model_trains,
    check_output_shape,
    first_batch,
    train_steps,
)
from mlcore.testing.component_checks import (
    check_callback,
    check_evaluator,
    check_loss,
    check_pipeline_profile,
    check_tracker,
    check_trainer,
)

if TYPE_CHECKING:
    from torch import nn

    from mlcore.components import ComponentSpec
    from mlcore.data import DataModule
    from mlcore.registry import Registry

__all__ = ["TRAINER_DEFAULTS", "PluginContract"]

#: test method -> (argument name, component kind)
_PARAMETRIZED: dict[str, tuple[str, str]] = {
    "test_component_loads": ("component", ""),
    "test_dataset_contract": ("dataset_name", "dataset"),
    "test_dataset_seed": ("dataset_name", "dataset"),
    "test_model_forward": ("model_name", "model"),
    "test_model_output_shape": ("model_name", "model"),
    "test_model_batch_independent": ("model_name", "model"),
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
        """The registered spec of ``kind``/``name`` (a pipeline: this plugin's)."""
        from mlcore.registry import SCOPED_KINDS

        if kind in SCOPED_KINDS and ":" not in name:
            name = f"{self.plugin}:{name}"
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

    def test_dataset_seed(self, dataset_name: str) -> None:
        """Same ``seed``, same first items (whatever the global RNGs hold); ``seed + 1``, different ones."""
        import attrs

        spec = self.spec("dataset", dataset_name)
        config = self.component_config(spec)
        seed = getattr(config, "seed", None) if attrs.has(type(config)) else None
        if not isinstance(seed, int) or isinstance(seed, bool):
            pytest.skip(f"{spec.qualified_name}: the config has no integer `seed` field")

        def build(value: int) -> DataModule:
            return spec.build(attrs.evolve(config, seed=value))  # type: ignore[no-any-return]

        check_dataset_seed(build, seed)

    def test_model_forward(self, model_name: str) -> None:
        """A forward pass on a real collated batch gives finite outputs."""
        model, _, batch = self.model_and_batch(model_name)
        check_model_forward(model, batch)

    def test_model_output_shape(self, model_name: str) -> None:
        """The output has the target's shape (or batch size, for labels): no loss broadcasts them."""
        model, _, batch = self.model_and_batch(model_name)
        if not check_output_shape(model, batch):
            pytest.skip(f"{type(model).__name__} pairs outputs and targets in compute_loss (or they are not tensors)")

    def test_model_batch_independent(self, model_name: str) -> None:
        """In eval mode each sample's output depends on its own inputs only."""
        model, _, batch = self.model_and_batch(model_name)
        if not check_batch_independence(model, batch):
            pytest.skip("the batch has one sample, or its samples' inputs could not be changed")

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
        """The loss gives a finite scalar with a gradient on a paired model's output (or random inputs)."""
        import torch

        loss_fn = self.build("loss", loss_name)
        if loss_name in self.loss_inputs:
            check_loss(loss_fn, *self.loss_inputs[loss_name]())
            return
        users = [
            s.name
            for s in self.registry().components("model", self.plugin)
            if (self.model_losses.get(s.name) or s.extras.get("loss")) == loss_name
        ]
        for user in users:
            model, _, batch = self.model_and_batch(user)
            if not callable(getattr(model, "compute_loss", None)):
                inputs, target = _split(batch, type(model).__name__)
                model.train()
                check_loss(loss_fn, model(inputs), target)  # a non-leaf prediction
                return
        if users:  # every paired model pairs outputs and targets itself: check the loss through it
            model, _, batch = self.model_and_batch(users[0])
            check_model_loss(model, batch, loss_fn)
            return
        g = torch.Generator().manual_seed(0)
        check_loss(loss_fn, torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g))

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
