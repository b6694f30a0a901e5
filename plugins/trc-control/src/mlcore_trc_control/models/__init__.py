"""Models of the trc-control plugin (imported on use: they need torch)."""

from __future__ import annotations
