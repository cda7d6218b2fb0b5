"""Loopback ports: a free one for each service, or a clear error when a fixed one is taken."""

from __future__ import annotations

import socket

from harness.errors import StackError

__all__ = ["LOOPBACK", "free_port", "ensure_port_free", "port_open"]

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


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
