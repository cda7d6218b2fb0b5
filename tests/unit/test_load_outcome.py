"""Tests for harness.load.outcome: answers become ok / fail / info honestly; Retry-After is read right."""

import pytest

from harness.load.outcome import classify_exception, classify_status, parse_retry_after, retry_wait_s


@pytest.mark.parametrize(
    "status, expected",
    [
        (200, ("ok", None)),
        (202, ("ok", None)),
        (400, ("fail", "http_400")),
        (404, ("fail", "http_404")),
        (409, ("fail", "http_409")),
        (422, ("fail", "http_422")),
        (429, ("fail", "http_429")),
        (500, ("info", "http_500")),
        (503, ("info", "http_503")),
        (504, ("info", "http_504")),
        (302, ("info", "http_302")),
    ],
)
def test_status_classes(status, expected):
    assert tuple(classify_status(status)) == expected


class Timeout(Exception):
    """Named like gevent's Timeout, which outcome recognises by name (no gevent import there)."""


class HTTPConnectionClosed(Exception):
    pass


class Wrapper(Exception):
    def __init__(self, original):
        super().__init__("retries exceeded")
        self.original = original


@pytest.mark.parametrize(
    "exc, error",
    [
        (TimeoutError(), "timeout"),
        (TimeoutError("timed out"), "timeout"),
        (Timeout(), "timeout"),
        (ConnectionRefusedError(111, "refused"), "connection_refused"),
        (ConnectionResetError(104, "reset"), "connection_reset"),
        (BrokenPipeError(32, "pipe"), "connection_reset"),
        (HTTPConnectionClosed("closed"), "connection_reset"),
        (Wrapper(TimeoutError("timed out")), "timeout"),
        (Wrapper(Wrapper(ConnectionRefusedError())), "connection_refused"),
        (ValueError("odd"), "error_ValueError"),
    ],
)
def test_no_answer_is_always_info(exc, error):
    assert tuple(classify_exception(exc)) == ("info", error)


def test_a_wrapper_cycle_does_not_loop():
    a = Wrapper(None)
    b = Wrapper(a)
    a.original = b
    assert classify_exception(a).type == "info"


def never_called():
    raise AssertionError("the wall clock is read only for HTTP-dates")


@pytest.mark.parametrize(
    "value, seconds",
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        (" 120 ", 120.0),
        ("0.25", 0.25),
        ("-4", 0.0),
        ("soon", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_retry_after_seconds(value, seconds):
    assert parse_retry_after(value, never_called) == seconds


def test_retry_after_http_date_uses_the_given_clock():
    # Wed, 21 Oct 2015 07:28:00 GMT is 1445412480 s after the epoch.
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", lambda: 1445412480.0 - 7.5) == 7.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", lambda: 1445412480.0 + 60) == 0.0


def test_retry_wait_prefers_the_server_and_is_capped():
    assert retry_wait_s(2.0, attempt=1, backoff_s=0.5, cap_s=10) == 2.0
    assert retry_wait_s(60.0, attempt=1, backoff_s=0.5, cap_s=10) == 10
    assert [retry_wait_s(None, a, 0.5, 10) for a in (1, 2, 3, 6)] == [0.5, 1.0, 2.0, 10]
