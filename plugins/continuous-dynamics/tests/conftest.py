"""Shared fixtures of the continuous-dynamics tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models run faster on one thread, especially on a shared CPU; restored after each test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: a data set small enough for unit tests (6 episodes of 3 s: 4 train, 1 val, 1 test)
TINY = {"episodes": 6, "episode_seconds": 3.0, "sequence_length": 5, "horizon": 6, "stride": 2}


@pytest.fixture(scope="session")
def tiny_data():
    """A prepared tiny vehicle-episodes data module (shared: do not mutate)."""
    from mlcore_continuous_dynamics.configs import VehicleEpisodesConfig
    from mlcore_continuous_dynamics.data import VehicleEpisodes

    return VehicleEpisodes(VehicleEpisodesConfig(**TINY)).prepare()
