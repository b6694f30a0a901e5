"""Helpers for worker processes the core starts (run-many jobs, ``mlcore tune --jobs N`` workers)."""

from __future__ import annotations

import os
import signal
import time


def watch_parent(parent_pid: int) -> None:
    """Stop this process cleanly (SIGTERM to itself) when the process that started it dies.

    Run it on a daemon thread of a worker process, so a parent killed with ``kill -9`` leaves none
    of its workers behind (run-many jobs, ``mlcore tune --jobs N`` workers).
    """
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            return
