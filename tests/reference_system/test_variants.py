"""Each known-bad variant visibly misbehaves: the defect is real, so a checker can be shown failing.

Each test drives the variant the way its defect shows up in production (a crash,
a client retry, a second consumer, a burst, a hung broker) and asserts the
symptom; the same procedures against `correct` are the tests in test_consumers.py
and test_ingest.py, which assert the opposite.
"""

from __future__ import annotations

import random

import httpx
import pytest

from reference_system.keys import stream_key
from tests.reference_system.conftest import kill_while_the_database_hangs, posting, wait_for
from tests.reference_system.tcp_proxy import Mode, TcpProxy

pytestmark = pytest.mark.integration

FAST = ("--lease-ms", "600", "--batch-size", "64")


def _backlog(system) -> int:
    client = system.redis()
    try:
        return sum(client.xlen(stream_key(p)) + client.xpending(stream_key(p), "ledger")["pending"] for p in range(4))
    finally:
        client.close()


def _lease_owners(system) -> list[str]:
    client = system.redis()
    try:
        values = [client.get(f"ledger:lease:{p}") for p in range(4)]
    finally:
        client.close()
    return sorted({v.decode().rsplit("|", 1)[0] for v in values if v})


def _crash_under_load(system, variant: str, kills: int, events: int = 2000) -> set[str]:
    """Fill the backlog, then kill -9 consumers while they drain it (so each kill lands mid-batch).

    The backlog is large enough that the drain outlasts every kill: with a small one the survivor
    drained it all after the first kill, and a lone kill between two batches loses nothing.

    Returns the accepted ids once the system is drained.
    """
    settings = (*FAST, "--variant", variant)
    rng = random.Random(5)
    system.start_api(*settings)
    bodies = [posting(key=f"k{i % 40}", debit=f"a{i % 11}", credit=f"b{i % 7}", amount=1 + i) for i in range(events)]
    results = system.submit(bodies, concurrency=16)
    names = ["c1", "c2"]
    for name in names:
        system.start_consumer(name, *settings)
    for _ in range(kills):
        before = len(system.posted_ids())
        wait_for(
            lambda before=before: len(system.posted_ids()) > before + 50 or _backlog(system) == 0, 30, "journal growth"
        )
        if _backlog(system) == 0:
            break
        name = rng.choice(_lease_owners(system) or names)  # a consumer that is working, not one starting up
        system.kill(name)
        system.start_consumer(name, *settings)
    wait_for(lambda: _backlog(system) == 0, 60, "the backlog to drain")
    return {b["event_id"] for b, status, _ in results if status == 202}


def test_ack_before_commit_loses_acknowledged_events_on_crash(system):
    lost = kill_while_the_database_hangs(system, "ack_before_commit", FAST)
    assert lost, "acking before the commit must lose the batch in flight when its consumer is killed"


def test_projection_outside_txn_drifts_from_the_journal_on_crash(system):
    _crash_under_load(system, "projection_outside_txn", kills=8, events=6000)
    assert system.ledger_checks()["drift"], "balances must differ from the journal replay after a crash"


def test_no_idempotency_posts_a_retried_event_twice(system):
    settings = ("--variant", "no_idempotency")
    system.start_api(*settings)
    system.start_consumer("c1", *settings)
    body = posting()
    assert [status for _, status, _ in system.submit([body, body, body], concurrency=1)] == [202, 202, 202]
    wait_for(lambda: len(system.posted_ids()) == 3, 30, "three journal rows for one event id")
    assert system.ledger_checks()["duplicate_ids"], "the same event id is posted more than once"


def test_no_lease_breaks_per_key_order(system):
    settings = ("--variant", "no_lease", "--batch-size", "20")
    system.start_api(*settings)
    bodies = [posting(key="one-key", amount=i + 1) for i in range(1500)]
    assert set(system.submit_in_order(bodies)) == {202}  # each acknowledged before the next is sent
    system.start_consumer("c1", *settings)
    system.start_consumer("c2", *settings)
    system.wait_posted({b["event_id"] for b in bodies}, 60)
    position = {event_id: i for i, event_id in enumerate(system.posted_ids())}
    sent = [b["event_id"] for b in bodies]
    inversions = sum(1 for a, b in zip(sent, sent[1:]) if position[a] > position[b])
    assert inversions > 0, "two consumers on one partition must apply some events out of order"


def test_no_backpressure_accepts_past_the_high_water_mark(system):
    system.start_api("--variant", "no_backpressure", "--high-water-mark", "50")
    statuses = [status for _, status, _ in system.submit([posting(key=f"k{i}") for i in range(80)], concurrency=1)]
    assert statuses == [202] * 80
    assert _backlog(system) == 80


def test_no_timeouts_hangs_when_the_broker_hangs(system):
    port = int(system.redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = TcpProxy(port)
    try:
        system.start_api("--variant", "no_timeouts", redis_url=f"redis://127.0.0.1:{proxy.port}/0")
        assert system.submit([posting()])[0][1] == 202
        proxy.set_mode(Mode.BLACKHOLE)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(system.url("/v1/events"), json=posting(), timeout=3)
    finally:
        system.kill("api")
        proxy.close()
