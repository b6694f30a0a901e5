"""Hook specifications: the whole contract between mlcore and its plugins.

A plugin is a module named by an entry point in the group ``mlcore.plugins``. It implements
any of the hooks below with ``@mlcore.hookimpl``. Each ``register_*`` hook returns a list of
:class:`~mlcore.components.ComponentSpec`; the registry fills in ``kind`` and ``plugin``.
Keep the hook bodies cheap: return specs that *name* import paths, do not import torch here.

The plugin module may declare the core API range it was written for::

    MLCORE_API = ">=1.0,<2"

Each hook's docstring below carries a complete example; ``docs/hooks.md`` is rendered from them
(``python tools/render_hooks_doc.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from mlcore.components import ComponentSpec

PROJECT_NAME = "mlcore"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_datasets() -> list[ComponentSpec]:
    """Register datasets: classes deriving from :class:`mlcore.data.DataModule`.

    A data module is built as ``DataModuleClass(config)``; it generates or loads its data in
    ``setup()``, hands out ``train_set()``/``val_set()``/``test_set()`` (torch datasets whose
    items are ``(inputs, targets)``), can write its files with ``generate(out_dir)``
    (``mlcore data generate NAME --out DIR``) and carries normalisation statistics in
    ``state_dict()`` so checkpoints are self-contained.

    Example::

        from mlcore import ComponentSpec, hookimpl

        @hookimpl
        def register_datasets():
            return [
                ComponentSpec(
                    name="sine",
                    target="my_plugin.data:SineData",
                    config="my_plugin.data:SineDataConfig",
                    summary="Noisy sine waves for sequence regression",
                )
            ]
    """


@hookspec
def register_models() -> list[ComponentSpec]:
    """Register models: ``torch.nn.Module`` classes built as ``ModelClass(config)``.

    A model may define ``compute_loss(batch, loss_fn)`` to own its loss (e.g. deep
    supervision); otherwise the trainer uses ``loss_fn(model(inputs), targets)``.
    Exportable models define ``example_input(batch_size)``.

    Example::

        from mlcore import ComponentSpec, hookimpl

        @hookimpl
        def register_models():
            return [
                ComponentSpec(
                    name="mlp",
                    target="my_plugin.models:MLP",
                    config="my_plugin.models:MLPConfig",
                    summary="Two-layer perceptron",
                    extras={"dataset": "sine"},
                )
            ]
    """


@hookspec
def register_losses() -> list[ComponentSpec]:
    """Register losses: callables ``loss(prediction, target) -> scalar tensor``.

    Example::

        from mlcore import ComponentSpec, hookimpl

        @hookimpl
        def register_losses():
            return [
                ComponentSpec(
                    name="log_cosh",
                    target="my_plugin.losses:LogCoshLoss",
                    summary="log(cosh(error)), smooth like MSE, robust like MAE",
                )
            ]
    """


@hookspec
def register_trainers() -> list[ComponentSpec]:
    """Register trainers: objects with ``fit(model, data, loss, *, run_dir, meta)``.

    The built-in ``supervised`` trainer (:class:`mlcore.training.Trainer`) covers most
    plugins; register a trainer only for a different kind of loop (e.g. reinforcement learning).

    Example::

        from mlcore import ComponentSpec, hookimpl

        @hookimpl
        def register_trainers():
            return [
                ComponentSpec(
                    name="sac",
                    target="my_plugin.rl:SACTrainer",
                    config="my_plugin.rl:SACTrainerConfig",
                    summary="Soft actor-critic through stable-baselines3",
                )
            ]
    """


@hookspec
def register_evaluators() -> list[ComponentSpec]:
    """Register evaluators: subclasses of :class:`mlcore.evaluation.Evaluator`.

    ``evaluate(model, data, device=..., out_dir=...)`` returns a flat ``dict[str, float]``
    that contains at least every name in the class attribute ``metrics``.

    Example::

        from mlcore import ComponentSpec, hookimpl

        @hookimpl
        def register_evaluators():
            return [
                ComponentSpec(
                    name="rollout",
                    target="my_plugin.evaluation:RolloutEvaluator",
                    config="my_plugin.evaluation:RolloutConfig",
                    summary="Open-loop multi-step rollout error",
                )
            ]
    """


@hookspec
def register_pipelines() -> list[ComponentSpec]:
    """Register pipelines: named end-to-end recipes run by ``mlcore run --plugin P``.

    A pipeline is built as ``PipelineClass(config)`` and runs with ``run(ctx)`` where ``ctx`` is
    a :class:`mlcore.runs.RunContext` (output directory, device, seed). Ship a ``quick`` and a
    ``full`` profile as config overrides; the first pipeline a plugin registers is its default.
    Pipeline names are scoped by plugin (``--plugin P --pipeline NAME``): another plugin may use
    the same name, unlike the names of every other kind of component.

    Example::

        from mlcore import ComponentSpec, hookimpl

        @hookimpl
        def register_pipelines():
            return [
                ComponentSpec(
                    name="sine",
                    target="my_plugin.pipeline:SinePipeline",
                    config="my_plugin.pipeline:SinePipelineConfig",
                    summary="generate -> train -> evaluate",
                    profiles={"quick": {"trainer": {"epochs": 3}}, "full": {"trainer": {"epochs": 100}}},
                )
            ]
    """


@hookspec
def register_trackers() -> list[ComponentSpec]:
    """Register experiment trackers: subclasses of :class:`mlcore.training.tracking.Tracker`.

    Trainers send scalars and histograms to every tracker named in ``trainer.trackers``.

    Example::

        from mlcore import ComponentSpec, hookimpl

        @hookimpl
        def register_trackers():
            return [
                ComponentSpec(
                    name="wandb",
                    target="my_plugin.tracking:WandbTracker",
                    summary="Weights & Biases",
                )
            ]
    """


@hookspec
def register_callbacks() -> list[ComponentSpec]:
    """Register training callbacks: subclasses of :class:`mlcore.training.callbacks.Callback`.

    Name them in ``trainer.callbacks`` to attach them to a run.

    Example::

        from mlcore import ComponentSpec, hookimpl

        @hookimpl
        def register_callbacks():
            return [
                ComponentSpec(
                    name="swa",
                    target="my_plugin.callbacks:StochasticWeightAveraging",
                    config="my_plugin.callbacks:SWAConfig",
                    summary="Average weights over the last epochs",
                )
            ]
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    '''Add commands to the ``mlcore`` CLI. Import heavy modules inside the command body.

    Example::

        import click
        from mlcore import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command(name="sine-plot")
            @click.argument("run_dir", type=click.Path(exists=True))
            def sine_plot(run_dir):
                """Plot predictions of a sine run."""
                from my_plugin.plots import plot_run

                plot_run(run_dir)
    '''
