"""Ctrl-C and SIGTERM as a request to stop training cleanly, not an exception at a random line."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

log = logging.getLogger(__name__)

#: The signals that ask a run to stop: Ctrl-C and what schedulers and ``timeout`` send.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class InterruptGuard:
    """While active, SIGINT and SIGTERM set :attr:`signal_name` instead of killing the process.

    The trainer checks :meth:`requested` before each batch and stops after the step in progress.
    A second Ctrl-C raises :class:`KeyboardInterrupt` at once (the trainer still writes its files).
    Handlers are installed only in the main thread (Python allows no other) and the previous
    ones are restored on exit.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def requested(self) -> bool:
        """Whether a stop signal arrived."""
        return self.signal_name is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signal_name is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.signal_name = name
        log.warning("%s received: stopping after the current step (Ctrl-C again to stop at once)", name)

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
