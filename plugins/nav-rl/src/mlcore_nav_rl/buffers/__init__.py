"""Replay buffers: proportional prioritized replay (with optional n-step) and n-step HER."""

from __future__ import annotations

from mlcore_nav_rl.buffers.her_nstep import NStepHerReplayBuffer
from mlcore_nav_rl.buffers.prioritized import PrioritizedReplayBuffer, PrioritizedReplayBufferSamples, SumTree

__all__ = ["NStepHerReplayBuffer", "PrioritizedReplayBuffer", "PrioritizedReplayBufferSamples", "SumTree"]
