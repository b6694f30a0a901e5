"""The mlcore conformance kit: prove that a plugin's components honour the contract.

In a plugin's test suite::

    from mlcore.testing import PluginContract

    class TestConformance(PluginContract):
        plugin = "my-plugin"
        config_overrides = {"dataset/sine": {"num_samples": 64}}

or, without writing a file, for any installed plugin: ``pytest --mlcore-plugin my-plugin``
(see :mod:`mlcore.testing.pytest_plugin`).

The modules:

- :mod:`mlcore.testing.checks` and :mod:`mlcore.testing.component_checks`: the checks as plain
  functions raising :class:`ContractError` (no pytest needed, like SB3's ``check_env``);
- :mod:`mlcore.testing.contract`: :class:`PluginContract`, the pytest test-class generator (its
  docstring lists every generated test and the ``extras`` keys it reads);
- :mod:`mlcore.testing.packaging`: :func:`check_dependencies_declared` (every import a plugin
  makes is in its own dependencies, so it installs alone);
- :mod:`mlcore.testing.toys`: a toy data module and model for tests (``ToyData``, ``ToyNet``);
- :mod:`mlcore.testing.pytest_plugin`: the ``pytest11`` plugin (``slow`` marker, fixtures,
  ``--mlcore-plugin``).

Importing this package does not import pytest or torch; ``PluginContract`` is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcore.testing.checks import (
    ContractError,
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
    model_loss,
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
from mlcore.testing.packaging import check_dependencies_declared

if TYPE_CHECKING:
    from mlcore.testing.contract import PluginContract

__all__ = [
    "ContractError",
    "PluginContract",
    "check_batch_independence",
    "check_callback",
    "check_checkpoint_roundtrip",
    "check_dataset",
    "check_dataset_seed",
    "check_dependencies_declared",
    "check_evaluator",
    "check_example_input",
    "check_loss",
    "check_model_forward",
    "check_model_loss",
    "check_model_trains",
    "check_output_shape",
    "check_pipeline_profile",
    "check_tracker",
    "check_trainer",
    "first_batch",
    "model_loss",
    "train_steps",
]


def __getattr__(name: str) -> Any:
    """Load :class:`PluginContract` (which imports pytest) only when asked for."""
    if name == "PluginContract":
        from mlcore.testing.contract import PluginContract

        return PluginContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
