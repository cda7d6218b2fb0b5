"""How an HTTP answer (or its absence) becomes an op outcome: ok, fail or info, with an error name.

Why its own module: the rule is the heart of honest recording (a timeout is
never a clean failure) and must be testable without Locust or a network.
Jepsen's model: `ok` the request definitely took effect (2xx); `fail` it
definitely did not (4xx: refused, conflicting, throttled); `info` nobody knows
(timeout, reset or refused connection, 5xx), to be resolved by a status read.
"""

from __future__ import annotations

import email.utils
import errno
import math
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["Outcome", "classify_status", "classify_exception", "parse_retry_after", "retry_wait_s"]


class Outcome(NamedTuple):
    type: str  # "ok" | "fail" | "info"
    error: str | None  # None for ok; http_<code>, timeout, connection_reset, connection_refused, ...


def classify_status(status_code: int) -> Outcome:
    """A status line came back: 2xx ok, 4xx fail, anything else (5xx, 1xx, 3xx) info."""
    if 200 <= status_code < 300:
        return Outcome("ok", None)
    if 400 <= status_code < 500:
        return Outcome("fail", f"http_{status_code}")
    # 5xx says the server could not finish; whether the event was enqueued is unknown.
    # 3xx/1xx are unexpected from this API and equally say nothing about the event.
    return Outcome("info", f"http_{status_code}")


def _unwrap(exc: BaseException) -> BaseException:
    """geventhttpclient wraps the cause in RetriesExceeded(original=...); the cause names the outcome."""
    for _ in range(5):  # a chain of wrappers is short; a cycle must not loop forever
        inner = getattr(exc, "original", None)
        if not isinstance(inner, BaseException):
            return exc
        exc = inner
    return exc


def classify_exception(exc: BaseException) -> Outcome:
    """No status line came back: always info, named after the cause."""
    exc = _unwrap(exc)
    name = type(exc).__name__
    if isinstance(exc, TimeoutError) or name == "Timeout":  # socket.timeout is TimeoutError; gevent's is "Timeout"
        return Outcome("info", "timeout")
    if isinstance(exc, ConnectionRefusedError):
        return Outcome("info", "connection_refused")
    # HTTPConnectionClosed: the server closed or reset the connection before a status line.
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)) or (
        name == "HTTPConnectionClosed"
    ):
        return Outcome("info", "connection_reset")
    if isinstance(exc, OSError) and exc.errno in (errno.ETIMEDOUT,):
        return Outcome("info", "timeout")
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return Outcome("info", "unreachable")
    return Outcome("info", f"error_{name}")


def parse_retry_after(value: str | None, now_epoch_s: Callable[[], float]) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds (decimals accepted) or an HTTP-date.

    now_epoch_s is asked only for the HTTP-date form (a wall-clock date needs the wall clock).
    None when absent or unreadable; negative values become 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now_epoch_s()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_wait_s(retry_after_s: float | None, attempt: int, backoff_s: float, cap_s: float) -> float:
    """The wait before attempt+1: the server's Retry-After when given, else exponential backoff; at most cap_s."""
    if retry_after_s is not None:
        return min(retry_after_s, cap_s)
    return min(backoff_s * 2 ** (attempt - 1), cap_s)
