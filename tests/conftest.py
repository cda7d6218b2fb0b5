"""Shared test fixtures: a real stack of services for integration tests, always torn down."""

from __future__ import annotations

import os
import re

import pytest

from harness.stack import LocalStack, StackConfig
from harness.stack.ports import PORT_RANGE_ENV, port_range

_PORTS_PER_WORKER = 1000


def pytest_configure(config):
    """Each pytest-xdist worker draws ports from a range of its own (no two stacks race for one)."""
    worker = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    if worker is None or os.environ.get(PORT_RANGE_ENV):
        return
    low, high = port_range()
    start = low + int(worker.group(1)) * _PORTS_PER_WORKER
    if start + _PORTS_PER_WORKER - 1 > high:
        raise pytest.UsageError(f"too many workers for the ports {low}-{high}: set {PORT_RANGE_ENV} per worker")
    os.environ[PORT_RANGE_ENV] = f"{start}-{start + _PORTS_PER_WORKER - 1}"


@pytest.fixture(scope="session")
def stack_services(tmp_path_factory):
    """Real Redis, PostgreSQL and Toxiproxy for the whole session (stopped even when tests fail)."""
    folder = tmp_path_factory.mktemp("stack")
    with LocalStack(StackConfig(run_dir=folder / "services")) as services:
        yield services


@pytest.fixture()
def toxiproxy(stack_services):
    """The Toxiproxy adapter on the session's server, reset before and after each test."""
    from harness.faults.toxiproxy_adapter import ToxiproxyAdapter

    adapter = ToxiproxyAdapter(stack_services.toxiproxy_url)
    adapter.reset()
    yield adapter
    adapter.reset()
    for name in adapter.proxies():
        adapter.delete_proxy(name)
