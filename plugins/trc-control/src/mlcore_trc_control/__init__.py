"""mlcore-trc-control: Tiny Recursive Control networks that imitate optimal linear-quadratic controllers.

Importing this package is cheap (no torch, no scipy); the components live in submodules:

- :mod:`mlcore_trc_control.lqr` — linear systems and the optimal-control solvers (the experts).
- :mod:`mlcore_trc_control.data` — the ``lqr`` data module and its ``.npz`` generator.
- :mod:`mlcore_trc_control.models.trc` — :class:`TinyRecursiveControl`.
- :mod:`mlcore_trc_control.evaluation` — the ``trc`` evaluator.
- :mod:`mlcore_trc_control.pipeline` — the ``trc`` pipeline behind ``mlcore run --plugin trc-control``.
"""

from __future__ import annotations

__version__ = "0.1.0"
