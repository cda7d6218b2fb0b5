"""Loopback ports: a free one for each service, or a clear error when a fixed one is taken.

Why not the kernel's choice for port 0: that port comes from the ephemeral range, the
same range every outgoing connection draws its source port from. Between the moment
we pick a port and the moment a server binds it, a client connection (Locust, a
consumer, a health probe) may take it, and the server fails with "address already in
use". Two harness processes side by side (two pytest workers, two runs) may also be
handed the same port. So ports come from a range below the ephemeral one, walked in
order by each process and never handed out twice by it, and each process may be given
a range of its own with ``LEDGERCHAOS_PORT_RANGE=LOW-HIGH`` (the test suite gives each
pytest worker one).
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

from harness.errors import StackError, UsageError

__all__ = ["LOOPBACK", "PORT_RANGE_ENV", "free_port", "port_range", "ensure_port_free", "port_open"]

LOOPBACK = "127.0.0.1"
PORT_RANGE_ENV = "LEDGERCHAOS_PORT_RANGE"
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_DEFAULT_SPAN = 12000  # ports below the ephemeral range the harness draws from by default
_LOWEST = 1024  # never a privileged port

_lock = threading.Lock()
_handed_out: set[int] = set()
_cursor: int | None = None


def _ephemeral_low() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux), else the IANA 49152."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


def port_range() -> tuple[int, int]:
    """The inclusive range free_port draws from: LEDGERCHAOS_PORT_RANGE, else just below the ephemeral range."""
    raw = os.environ.get(PORT_RANGE_ENV, "").strip()
    if not raw:
        high = _ephemeral_low() - 1
        return max(_LOWEST, high - _DEFAULT_SPAN), high
    try:
        low_text, high_text = raw.split("-")
        low, high = int(low_text), int(high_text)
    except ValueError:
        raise UsageError(f"{PORT_RANGE_ENV}={raw!r}: expected LOW-HIGH, for example 20000-20999") from None
    if not _LOWEST <= low <= high <= 65535:
        raise UsageError(f"{PORT_RANGE_ENV}={raw!r}: need {_LOWEST} <= LOW <= HIGH <= 65535")
    return low, high


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nobody listens on right now and this process has not handed out before.

    The walk starts at an offset derived from the process id, so two processes sharing the
    default range rarely probe the same ports; within one process ports are never reused.
    """
    global _cursor
    low, high = port_range()
    span = high - low + 1
    with _lock:
        if _cursor is None or not low <= _cursor <= high:
            _cursor = low + (os.getpid() * 97) % span
        for _ in range(span):
            port = _cursor
            _cursor = low if _cursor >= high else _cursor + 1
            if port in _handed_out or not _bindable(port):
                continue
            _handed_out.add(port)
            return port
    raise StackError(
        f"no free loopback port left in {low}-{high} ({len(_handed_out)} handed out by this process); "
        f"widen {PORT_RANGE_ENV}"
    )


def ensure_port_free(port: int, service: str) -> None:
    """Raise StackError when port is already bound on the loopback address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            raise StackError(
                f"{service}: port {port} on {LOOPBACK} is already in use ({exc.strerror}); "
                f"choose another port, or 0 for a free one"
            ) from exc


def port_open(port: int, host: str = LOOPBACK, timeout_s: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
