"""The mlcore conformance kit: prove that a plugin's components honour the contract.

In a plugin's test suite::

    from mlcore.testing import PluginContract

    class TestConformance(PluginContract):
        plugin = "my-plugin"
        config_overrides = {"dataset/sine": {"num_samples": 64}}

or, without writing a file, for any installed plugin: ``pytest --mlcore-plugin my-plugin``
(see :mod:`mlcore.testing.pytest_plugin`).
"""

from __future__ import annotations

from mlcore.testing.contract import ContractError, PluginContract

__all__ = ["ContractError", "PluginContract"]
