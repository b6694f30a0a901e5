"""mlcore-sine: an example third-party mlcore plugin (noisy sine windows -> next value).

It is written only against mlcore's public API and registers, through the ``mlcore.plugins``
entry point ``sine``:

- dataset ``sine``: noisy sine windows, predict the next value from the last ``window`` values;
- model ``sine_mlp``: a small MLP with ``example_input`` (so ``mlcore export`` works);
- pipeline ``sine``: generate -> train -> evaluate -> ``report.md``, with ``quick``/``full`` profiles.

Importing this package is cheap; torch is imported by the modules that need it.
"""

from __future__ import annotations

__version__ = "0.1.0"
