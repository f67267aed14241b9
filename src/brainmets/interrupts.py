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


_received: list[int] = []  # the signals that arrived while terminating_on_signals was active


def _raise_terminated(signum: int, frame) -> None:
    _received.append(signum)
    raise Terminated(signum)


def raise_if_terminated() -> None:
    """Raise Terminated if a termination signal arrived but its exception was swallowed. Python runs a handler
    wherever the main thread happens to be, and an exception raised inside a destructor or a garbage-collector
    callback is only printed ("Exception ignored in ..."), and a library's bare `except:` drops it silently; so
    the points where outputs are committed, a study ends or the command returns check here too."""
    if _received:
        raise Terminated(_received[0])


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def terminating_on_signals() -> Iterator[None]:
    """SIGTERM and SIGINT raise Terminated for the duration (main thread only; elsewhere nothing changes).
    The signals received meanwhile (see ``raise_if_terminated``) are forgotten at the end, and an enclosing
    block's are kept."""
    if not _in_main_thread():
        yield
        return
    outer = _received[:]
    saved = {s: signal.signal(s, _raise_terminated) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        _received[:] = outer


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGTERM and SIGINT back while a block that must not be cut short runs (renaming a set of outputs
    into place, removing a study's outputs); one that arrived meanwhile is acted on when the block ends.

    Deferred at the level of Python's handlers, not with the thread's signal mask: the kernel may hand a
    process-directed signal to any thread (numpy's and ITK's workers included), and Python runs the handler in
    the main thread whichever received it."""
    if not _in_main_thread():
        yield
        return
    pending: list[int] = []
    saved = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        if pending:
            handler = saved[pending[0]]
            if callable(handler):
                handler(pending[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(pending[0])
