"""Seeding and RNG-state capture used by resume."""

from __future__ import annotations

import random

import numpy as np
import torch

from mlcore.seeding import rng_state, seed_everything, set_rng_state


def test_seed_everything_repeats_all_generators():
    seed_everything(5)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(5)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_rng_state_round_trip_survives_weights_only_load(tmp_path):
    seed_everything(1)
    state = rng_state()
    torch.save(state, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(99)
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_deterministic_switch_turns_on_and_off():
    seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    seed_everything(0, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
