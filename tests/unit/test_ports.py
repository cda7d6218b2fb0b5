"""free_port: below the ephemeral range, never the same port twice, a range per process when asked."""

from __future__ import annotations

import socket

import pytest

from harness.errors import StackError, UsageError
from harness.stack import ports


@pytest.fixture()
def fresh(monkeypatch):
    """A process-fresh allocator: nothing handed out, the walk not started."""
    monkeypatch.setattr(ports, "_handed_out", set())
    monkeypatch.setattr(ports, "_cursor", None)
    monkeypatch.delenv(ports.PORT_RANGE_ENV, raising=False)
    return monkeypatch


def test_default_range_lies_below_the_ephemeral_range(fresh):
    low, high = ports.port_range()
    assert 1024 <= low < high < ports._ephemeral_low()


def test_no_port_is_handed_out_twice(fresh):
    fresh.setenv(ports.PORT_RANGE_ENV, "23000-23039")
    handed = [ports.free_port() for _ in range(30)]
    assert len(set(handed)) == 30
    assert all(23000 <= port <= 23039 for port in handed)


def test_a_port_someone_listens_on_is_skipped(fresh):
    fresh.setenv(ports.PORT_RANGE_ENV, "23100-23101")
    with socket.socket() as taken:
        taken.bind((ports.LOOPBACK, 23100))
        taken.listen()
        assert ports.free_port() == 23101
        with pytest.raises(StackError, match="no free loopback port left in 23100-23101"):
            ports.free_port()


@pytest.mark.parametrize("raw", ["20000", "a-b", "30000-20000", "80-90", "60000-70000"])
def test_a_wrong_range_is_refused_naming_the_variable(fresh, raw):
    fresh.setenv(ports.PORT_RANGE_ENV, raw)
    with pytest.raises(UsageError, match=ports.PORT_RANGE_ENV) as caught:
        ports.free_port()
    assert caught.value.exit_code == 2
