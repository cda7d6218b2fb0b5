"""Shared test fixtures: a real stack of services for integration tests, always torn down."""

from __future__ import annotations


import pytest

from harness.stack import LocalStack, StackConfig


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
