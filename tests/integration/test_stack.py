"""The local stack: real services, real proxies, real toxics, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
import pytest
import redis

from harness.errors import FaultError, StackError
from harness.faults import Direction, ToxicType
from harness.stack import LocalStack, StackConfig
from harness.stack.ports import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _port(url: str) -> int:
    return urlparse(url).port


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _ping_s(client: redis.Redis) -> float:
    began = time.perf_counter()
    assert client.ping()
    return time.perf_counter() - began


async def _pg_roundtrip(port: int) -> list:
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres", database="postgres", timeout=5)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS probe (id int primary key, note text)")
        await conn.execute("INSERT INTO probe VALUES (1, 'through the proxy') ON CONFLICT DO NOTHING")
        return await conn.fetch("SELECT note FROM probe WHERE id = 1", timeout=5)
    finally:
        await conn.close(timeout=5)


def test_services_through_toxiproxy_latency_and_reset_peer(tmp_path):
    stack = LocalStack(StackConfig(run_dir=tmp_path / "run"))
    with stack as services:
        from harness.faults.toxiproxy_adapter import ToxiproxyAdapter

        proxies = ToxiproxyAdapter(services.toxiproxy_url)
        redis_proxy = proxies.create_proxy("consumer_redis", f"127.0.0.1:{_port(services.redis_url)}")
        pg_proxy = proxies.create_proxy("consumer_postgres", f"127.0.0.1:{_port(services.postgres_url)}")

        through = redis.Redis(host="127.0.0.1", port=redis_proxy.listen_port, socket_timeout=5)
        direct = redis.Redis(host="127.0.0.1", port=_port(services.redis_url), socket_timeout=5)
        through.set("greeting", "hello")
        assert direct.get("greeting") == b"hello"
        rows = asyncio.run(_pg_roundtrip(pg_proxy.listen_port))
        assert rows[0]["note"] == "through the proxy"

        # A latency toxic adds at least its latency, on any machine however busy; the figures
        # (direct, through, with the toxic) are in benchmarks/bench_timing.py.
        name = proxies.add_toxic("consumer_redis", ToxicType.LATENCY, {"latency": 200}, Direction.DOWNSTREAM)
        assert _ping_s(through) >= 0.200
        proxies.remove_toxic("consumer_redis", name)
        assert proxies.toxics("consumer_redis") == []
        assert through.ping() and direct.ping()

        proxies.add_toxic("consumer_redis", ToxicType.RESET_PEER, {"timeout": 0})
        with pytest.raises(redis.ConnectionError):
            through.ping()
        proxies.reset()
        assert proxies.toxics("consumer_redis") == []
        pids = services.pids
        assert all(_alive(pid) for pid in pids)
    assert not any(_alive(pid) for pid in pids)
    assert not (tmp_path / "run").exists()


def test_toxiproxy_errors_are_clear(toxiproxy):
    with pytest.raises(FaultError, match="proxy 'missing' does not exist"):
        toxiproxy.add_toxic("missing", ToxicType.LATENCY, {"latency": 1})
    toxiproxy.create_proxy("api_redis", "127.0.0.1:1")
    with pytest.raises(FaultError, match="unknown attribute"):
        toxiproxy.add_toxic("api_redis", ToxicType.LATENCY, {"latenccy": 1})
    with pytest.raises(FaultError, match="whole number"):
        toxiproxy.add_toxic("api_redis", ToxicType.LATENCY, {"latency": -5})
    with pytest.raises(FaultError, match="not on loopback"):
        toxiproxy.create_proxy("outside", "127.0.0.1:1", listen="0.0.0.0:0")


def test_every_toxic_type_can_be_added_updated_and_removed(toxiproxy):
    toxiproxy.create_proxy("client_api", "127.0.0.1:1")
    for toxic in ToxicType:
        for direction in Direction:
            name = toxiproxy.add_toxic("client_api", toxic, {}, direction, toxicity=0.5)
            found = {t.name: t for t in toxiproxy.toxics("client_api")}
            assert found[name].type == toxic.value and found[name].stream == direction.value
            assert found[name].toxicity == pytest.approx(0.5)
            toxiproxy.remove_toxic("client_api", name)
    name = toxiproxy.add_toxic("client_api", ToxicType.LATENCY, {"latency": 10})
    toxiproxy.update_toxic("client_api", name, {"latency": 99})
    assert toxiproxy.toxics("client_api")[0].attributes["latency"] == 99
    toxiproxy.disable("client_api")
    assert toxiproxy.proxies()["client_api"].enabled is False
    toxiproxy.reset()
    assert toxiproxy.proxies()["client_api"].enabled is True


def test_unreachable_toxiproxy_is_a_clear_error():
    from harness.faults.toxiproxy_adapter import ToxiproxyAdapter

    adapter = ToxiproxyAdapter(f"http://127.0.0.1:{free_port()}", timeout_s=1.0)
    with pytest.raises(FaultError, match="cannot reach Toxiproxy"):
        adapter.proxies()


def _cli(*args, env=None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def test_sigint_to_stack_up_leaves_no_process(tmp_path):
    proc = _cli("stack", "up", "--run-dir", str(tmp_path / "run"))
    pids = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("pids"):
                pids = [int(p) for p in line.split()[1:]]
            if "Ctrl-C" in line or not line:
                break
        assert len(pids) == 3, proc.stderr.read() if proc.poll() is not None else "no pids line"
        assert all(_alive(pid) for pid in pids)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert not any(_alive(pid) for pid in pids)
    assert not (tmp_path / "run").exists()


def test_sigterm_to_stack_up_leaves_no_process(tmp_path):
    proc = _cli("stack", "up", "--no-toxiproxy")
    pids = []
    try:
        for _ in range(20):
            line = proc.stdout.readline()
            if line.startswith("pids"):
                pids = [int(p) for p in line.split()[1:]]
                break
        assert len(pids) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert not any(_alive(pid) for pid in pids)


def _run_cli(*args, env=None):
    proc = _cli(*args, "--duration-s", "1", env=env)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_port_already_taken_exits_3():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        code, _out, err = _run_cli("stack", "up", "--redis-port", str(taken))
    assert code == 3
    assert f"port {taken}" in err and "already in use" in err
    assert "Traceback" not in err


def test_missing_binary_exits_3(tmp_path):
    empty = tmp_path / "empty-tools"
    empty.mkdir()
    code, _out, err = _run_cli("stack", "up", env={"LEDGERCHAOS_TOOLS_BIN": str(empty)})
    assert code == 3
    assert "toxiproxy-server not found" in err and "make setup" in err
    assert "Traceback" not in err


def test_postgres_failing_to_start_exits_3_with_its_log():
    code, _out, err = _run_cli("stack", "up", "--postgres-setting", "max_connections=-5")
    assert code == 3
    assert "postgres" in err and "last lines of" in err and "max_connections" in err
    assert "Traceback" not in err


def test_stack_error_when_started_twice_on_same_fixed_port(tmp_path):
    port = free_port()
    with LocalStack(StackConfig(run_dir=tmp_path / "a", toxiproxy=False, redis_port=port)):
        with pytest.raises(StackError, match="already in use"):
            with LocalStack(StackConfig(run_dir=tmp_path / "b", toxiproxy=False, redis_port=port)):
                pass
