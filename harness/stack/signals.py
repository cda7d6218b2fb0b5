"""Turn SIGTERM and SIGHUP into an exception, so `with` blocks clean up as they do on Ctrl-C.

Why: Python's default SIGTERM kills the process without running `finally`
blocks; a harness stopped by CI or systemd would leave Redis, PostgreSQL,
Toxiproxy and toxics behind.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["Terminated", "terminate_as_exception"]


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM/SIGHUP). A KeyboardInterrupt, so it unwinds like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signal.Signals(signum).name}")
        self.signum = signum


def _raise(signum: int, _frame) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_exception() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise Terminated (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
