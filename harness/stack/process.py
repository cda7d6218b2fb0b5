"""One child process of the stack: started in its own session, logged to a file, always stopped.

Why its own module: every service (Redis, PostgreSQL, Toxiproxy, the reference
system's processes) needs the same four things — a log file whose tail goes into
error messages, a bounded wait for readiness, a bounded stop that escalates to
SIGKILL, and a guarantee that the child dies with the harness (PR_SET_PDEATHSIG),
so that even a `kill -9` of the harness leaves no orphan behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import StackError

__all__ = ["ManagedProcess", "wait_until", "log_tail"]

_PR_SET_PDEATHSIG = 1
LOG_TAIL_LINES = 20


def _die_with_parent() -> None:
    """In the child, before exec: ask the kernel to SIGKILL us when the harness dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:  # not Linux: cleanup then rests on the context managers alone
        pass


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file, for error messages; empty when there is none."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16_384))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    interval_s: float = 0.02,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll condition until it holds, at most timeout_s; raise StackError naming `what` otherwise.

    `alive`, when given, is checked too, so a process that died is reported at
    once instead of after the whole timeout.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return
        if alive is not None and not alive():
            raise StackError(f"{what}: the process exited before it was ready")
        if time.monotonic() >= deadline:
            raise StackError(f"{what}: not ready within {timeout_s:g} s")
        time.sleep(interval_s)


@dataclass
class ManagedProcess:
    """A started child process with its log file."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    stop_signal: int = signal.SIGTERM

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> ManagedProcess:
        """Start argv with stdout and stderr into log_path, in a new session (own process group)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=str(cwd) if cwd else None,
                start_new_session=True,
                user=user,
                group=user,
                extra_groups=[] if user else None,
                preexec_fn=_die_with_parent,
            )
        except FileNotFoundError as exc:
            raise StackError(f"{name}: cannot run {argv[0]!r}: {exc.strerror}; run `make setup`") from exc
        except PermissionError as exc:
            raise StackError(f"{name}: cannot run {argv[0]!r} as {user or 'this user'}: {exc}") from exc
        finally:
            log.close()
        return cls(name=name, popen=popen, log_path=log_path, stop_signal=stop_signal)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self) -> str:
        return log_tail(self.log_path)

    def failure(self, reason: str) -> StackError:
        """A StackError that carries the log tail, so the cause is in the message."""
        tail = self.tail()
        detail = f"\n--- last lines of {self.log_path} ---\n{tail}" if tail else f" (log {self.log_path} is empty)"
        return StackError(f"{self.name} {reason}{detail}")

    def signal_group(self, signum: int) -> None:
        """Send a signal to the process group (the service and any children it forked)."""
        try:
            os.killpg(self.popen.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """Stop gracefully with stop_signal, then SIGKILL the group after timeout_s. Returns the exit code."""
        if self.alive():
            self.signal_group(signal.SIGCONT)  # a paused process cannot handle SIGTERM
            self.signal_group(self.stop_signal)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                try:
                    self.popen.wait(timeout=5.0)
                except subprocess.TimeoutExpired:  # pragma: no cover - the kernel did not reap it
                    raise StackError(f"{self.name} (pid {self.pid}) survived SIGKILL") from None
        # Children of the service (postgres backends) share its group: make sure none lingers.
        self.signal_group(signal.SIGKILL)
        return self.popen.returncode
