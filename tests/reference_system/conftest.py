"""Fixtures for the reference system's tests: the real stack, a fresh ledger per test, process handles.

Why processes: the contract is `python -m reference_system api|consumer`, and
the tests kill -9 and SIGTERM those processes exactly as the harness will.
Each test gets its own PostgreSQL database and an empty Redis, so tests do not
see each other's events.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from harness.stack import LocalStack, StackConfig
from harness.stack.ports import free_port
from reference_system.keys import GROUP, consumer_counter_key, consumer_gauge_key, stream_key
from tests.reference_system.tcp_proxy import Mode, TcpProxy

ROOT = Path("/tmp/lc-refsys")
REPO = Path(__file__).resolve().parents[2]
_counter = itertools.count()


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.05) -> Any:
    """Poll until condition() is truthy; fail the test naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)  # polling interval of a condition wait, not a fixed sleep


def sql(url: str, query: str, *args: Any) -> list:
    async def run() -> list:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return await conn.fetch(query, *args, timeout=30)
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture(scope="session")
def services():
    """Real Redis and PostgreSQL for the whole session (always stopped)."""
    run_dir = ROOT / f"stack-{os.getpid()}"
    with LocalStack(StackConfig(run_dir=run_dir, toxiproxy=False)) as stack:
        yield stack


def posting(
    key: str = "k",
    debit: str = "alice",
    credit: str = "bob",
    amount: int = 100,
    currency: str = "EUR",
    event_id: str | None = None,
) -> dict:
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "key": key,
        "debit_account": debit,
        "credit_account": credit,
        "amount_minor": amount,
        "currency": currency,
    }


@dataclass
class System:
    """One test's reference system: a fresh database, an empty Redis, and the processes it started."""

    redis_url: str
    postgres_url: str
    log_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    consumer_started_ms: dict[str, int] = field(default_factory=dict)
    api_port: int | None = None

    # ----- processes ---------------------------------------------------------------------------

    def _spawn(
        self, name: str, argv: list[str], redis_url: str | None, postgres_url: str | None = None
    ) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
        cmd = [
            sys.executable,
            "-m",
            "reference_system",
            *argv,
            "--redis-url",
            redis_url or self.redis_url,
            "--postgres-url",
            postgres_url or self.postgres_url,
        ]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        self.procs[name] = proc
        return proc

    def start_api(self, *settings: str, redis_url: str | None = None, wait: bool = True) -> str:
        self.api_port = free_port()
        proc = self._spawn("api", ["api", "--port", str(self.api_port), *settings], redis_url)
        if wait:

            def ready() -> bool:
                assert proc.poll() is None, f"API exited with {proc.returncode}; see {self.log_dir}/api.log"
                try:
                    return httpx.get(self.url("/v1/health"), timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(ready, 30, "the API to answer /v1/health with 200")
        return self.url("")

    def start_consumer(
        self, name: str, *settings: str, redis_url: str | None = None, postgres_url: str | None = None
    ) -> subprocess.Popen:
        self.consumer_started_ms[name] = int(time.time() * 1000)
        return self._spawn(name, ["consumer", "--name", name, *settings], redis_url, postgres_url)

    def wait_consumers(self, count: int, timeout_s: float = 30) -> None:
        """Until `count` consumers are alive and each one started here has beaten since its start.

        The second condition is what makes a signal reach a running process: a consumer restarted
        under the same name counts as alive by its predecessor's heartbeat, while the new process
        may still be starting Python (a SIGTERM then is a -15 death, not a drain).
        """

        def alive() -> bool:
            try:
                if httpx.get(self.url("/v1/health"), timeout=2).json().get("consumers_alive") != count:
                    return False
            except httpx.HTTPError:
                return False
            client = self.redis()
            try:
                for name, started_ms in self.consumer_started_ms.items():
                    if (
                        name in self.procs
                        and int(client.hget(consumer_gauge_key(name), "heartbeat_ms") or 0) < started_ms
                    ):
                        return False
            finally:
                client.close()
            return True

        wait_for(alive, timeout_s, f"{count} live consumers")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.api_port}{path}"

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait(10)

    def terminate(self, name: str, timeout_s: float = 10) -> tuple[int, float]:
        """SIGTERM, then the exit code and how long the process took to exit."""
        proc = self.procs.pop(name)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout_s)
        return code, time.monotonic() - began

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(8)
                except subprocess.TimeoutExpired:
                    print(f"{name} ignored SIGTERM for 8 s; killed (see {self.log_dir}/{name}.log)")
                    proc.kill()
                    proc.wait(5)

    # ----- observations -------------------------------------------------------------------------

    def sql(self, query: str, *args: Any) -> list:
        return sql(self.postgres_url, query, *args)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=5)

    def posted_ids(self) -> list[str]:
        try:
            return [str(r["event_id"]) for r in self.sql("SELECT event_id FROM journal ORDER BY seq")]
        except asyncpg.UndefinedTableError:
            return []

    def wait_posted(self, ids: set[str], timeout_s: float = 60) -> None:
        wait_for(lambda: ids <= set(self.posted_ids()), timeout_s, f"{len(ids)} accepted events to be posted")

    def submit(self, bodies: list[dict], concurrency: int = 16, timeout_s: float = 10) -> list[tuple[dict, int, dict]]:
        """POST bodies concurrently; return (body, status, answer) per body, in input order."""

        async def run() -> list:
            limits = httpx.Limits(max_connections=concurrency)
            async with httpx.AsyncClient(base_url=self.url(""), timeout=timeout_s, limits=limits) as client:
                gate = asyncio.Semaphore(concurrency)

                async def one(body: dict) -> tuple[dict, int, dict]:
                    async with gate:
                        response = await client.post("/v1/events", json=body)
                        return body, response.status_code, response.json()

                return await asyncio.gather(*(one(b) for b in bodies))

        return asyncio.run(run())

    def submit_in_order(self, bodies: list[dict], timeout_s: float = 10) -> list[int]:
        """One at a time: each is answered before the next is sent (the ordering contract)."""
        with httpx.Client(base_url=self.url(""), timeout=timeout_s) as client:
            return [client.post("/v1/events", json=b).status_code for b in bodies]

    def ledger_checks(self) -> dict[str, Any]:
        """The invariants every test can assert on: duplicates, zero-sum lines, replay = projection."""
        return {
            "duplicate_ids": self.sql("SELECT event_id FROM journal GROUP BY event_id HAVING count(*) > 1"),
            "unbalanced_events": self.sql(
                "SELECT event_id FROM journal_lines GROUP BY event_id HAVING sum(amount_minor) <> 0"
            ),
            "drift": self.sql("SELECT * FROM ledger_projection_drift()"),
            "balance_sum": self.sql("SELECT coalesce(sum(balance_minor), 0) AS s FROM balances")[0]["s"],
        }


class PacedSubmission:
    """Submits `bodies` from a thread in `rounds + 1` chunks; chunk k+1 waits for the test's k-th disruption.

    Why paced: with one unpaced submitter a quick machine posts every event before the last
    restart, and "wait until the journal has grown" can then never hold (CI failed that way).
    Here each disruption lands while its own chunk is being sent and posted, on any machine.
    """

    def __init__(self, system: System, bodies: list[dict], rounds: int, send: Callable[[list[dict]], list]) -> None:
        size = -(-len(bodies) // (rounds + 1))
        self.chunks = [bodies[i : i + size] for i in range(0, len(bodies), size)]
        assert len(self.chunks) == rounds + 1, "too few bodies for that many rounds"
        self.system = system
        self.results: list = []
        self._send = send
        self._gates = [threading.Event() for _ in range(rounds)]
        self._base = len(system.posted_ids())
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for index, chunk in enumerate(self.chunks):
            if index:
                self._gates[index - 1].wait(120)
            self.results.extend(self._send(chunk))

    def start(self) -> PacedSubmission:
        self._thread.start()
        return self

    def wait_flowing(self, round_index: int, margin: int = 20) -> None:
        """Until `margin` events of this round's chunk are in the journal: the consumers are at work."""
        target = (
            self._base + sum(len(c) for c in self.chunks[:round_index]) + min(margin, len(self.chunks[round_index]))
        )
        wait_for(lambda: len(self.system.posted_ids()) >= target, 30, f"the journal to grow in round {round_index}")

    def release(self, round_index: int) -> None:
        self._gates[round_index].set()

    def join(self, timeout_s: float = 120) -> list:
        for gate in self._gates:
            gate.set()
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), f"submission still running after {timeout_s:g} s"
        return self.results


def kill_while_the_database_hangs(system: System, variant: str, flags: tuple[str, ...]) -> set[str]:
    """kill -9 a consumer that has read a batch and is stuck committing it; return the ids lost.

    Deterministic where a kill during a drain is a gamble: the consumer's PostgreSQL goes through
    a proxy that black-holes it once the consumer is working, so the second batch is read and its
    commit hangs. The kill comes once part of it is read: either gone from the stream (acked
    without a commit: the defect) or pending (what the correct system holds until it commits).
    """
    settings = (*flags, "--variant", variant)
    host_port = system.postgres_url.split("@", 1)[1].split("/", 1)[0]
    proxy = TcpProxy(int(host_port.rsplit(":", 1)[1]))
    try:
        via_proxy = system.postgres_url.replace(host_port, f"127.0.0.1:{proxy.port}")
        system.start_api(*settings)
        first = [posting(key=f"k{i}") for i in range(20)]
        assert {status for _, status, _ in system.submit(first)} == {202}
        system.start_consumer("c1", *settings, postgres_url=via_proxy)
        system.wait_posted({b["event_id"] for b in first}, 30)
        # The rows are visible before the consumer has the COMMIT's reply: wait for its own count.
        wait_for(lambda: _posted_by(system, "c1") == len(first), 30, "c1 to count the first batch as posted")
        proxy.set_mode(Mode.BLACKHOLE)
        second = [posting(key=f"k{i}") for i in range(40)]
        assert {status for _, status, _ in system.submit(second)} == {202}
        wait_for(lambda: _read_by_a_consumer(system, len(second)), 30, "the consumer to read the second batch")
        assert len(system.posted_ids()) == len(first), "the commit went through the black hole"
        system.kill("c1")
        proxy.set_mode(Mode.PASS)
        system.start_consumer("c1", *settings)
        wait_for(lambda: _in_streams(system) == 0, 60, "the streams to drain")
        return {b["event_id"] for b in first + second} - set(system.posted_ids())
    finally:
        system.kill("c1")
        proxy.close()


def _posted_by(system: System, name: str) -> int:
    client = system.redis()
    try:
        return int(client.hget(consumer_counter_key(name), "posted") or 0)
    finally:
        client.close()


def _in_streams(system: System) -> int:
    """Entries still in the partition streams (pending ones included: XDEL follows the ack)."""
    client = system.redis()
    try:
        return sum(client.xlen(stream_key(p)) for p in range(4))
    finally:
        client.close()


def _read_by_a_consumer(system: System, submitted: int) -> bool:
    """Some entry is delivered: pending (held for its commit) or gone from the stream (acked)."""
    client = system.redis()
    try:
        pending = sum(client.xpending(stream_key(p), GROUP)["pending"] for p in range(4))
    finally:
        client.close()
    return _in_streams(system) < submitted or pending > 0


@pytest.fixture()
def system(services, request):
    """A fresh database and an empty Redis for one test; every process it starts is stopped after."""
    name = f"t{os.getpid()}_{next(_counter)}"
    base = services.postgres_url.rsplit("/", 1)[0]
    sql(services.postgres_url, f'CREATE DATABASE "{name}"')
    client = redis.Redis.from_url(services.redis_url, socket_timeout=5)
    client.flushall()
    client.close()
    log_dir = ROOT / "logs" / request.node.name.replace("/", "_")[:80]
    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob("*.log"):
        old.unlink()
    sys_ = System(redis_url=services.redis_url, postgres_url=f"{base}/{name}", log_dir=log_dir)
    try:
        yield sys_
    finally:
        sys_.stop_all()
        sql(services.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
