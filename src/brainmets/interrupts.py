"""SIGTERM and SIGINT as an exception: a cancelled or timed-out job (SLURM sends SIGTERM, then SIGKILL after
KillWait) unwinds like Ctrl-C, so every `finally` runs and no temporary output file is left behind."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Terminated(BaseException):
    """A termination signal arrived. A BaseException, as KeyboardInterrupt is: no `except Exception` (a study's
    failure) catches it, so it always ends the command."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process killed by it (143 for SIGTERM, 130 for SIGINT)."""
        return 128 + self.signum


def _raise_terminated(signum: int, frame) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminating_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise Terminated for the duration (main thread only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.signal(s, _raise_terminated) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGTERM and SIGINT back while a block that must not be cut short runs (renaming a set of outputs
    into place, removing a study's outputs); one that arrived meanwhile is delivered when the block ends."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
