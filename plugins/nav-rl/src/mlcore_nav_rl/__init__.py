"""mlcore-nav-rl: robot navigation reinforcement learning with HER, PER, n-step returns and curriculum."""

from __future__ import annotations

__version__ = "0.1.0"
