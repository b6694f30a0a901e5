"""Shared fixtures: keep torch single-threaded so tests stay fast on a shared 2-core machine."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    import torch

    torch.set_num_threads(1)
    yield
