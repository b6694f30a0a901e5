"""mlcore-printer-corrector: real-time prediction of a 3D printer's tracking error.

G-code (read with ``gcodeparser``) -> firmware-like motion planner (trapezoids, junction deviation,
look-ahead) -> reference trajectory at 100 Hz -> belt-compliance axis dynamics -> tracking error;
an LSTM (``realtime_corrector``) learns the error from a window of the reference, and its
prediction pre-distorts the reference (feed-forward compensation).

Importing this package is cheap; numpy, torch and scipy are imported by the modules that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"
