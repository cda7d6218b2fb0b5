"""Ingest API against real Redis and PostgreSQL: idempotency, validation, backpressure, broker down."""

from __future__ import annotations

import uuid

import httpx
import pytest

from reference_system.keys import stream_key
from tests.reference_system.conftest import posting, wait_for
from tests.reference_system.tcp_proxy import Mode, TcpProxy

pytestmark = pytest.mark.integration


def _stream_total(system, partitions: int = 4) -> int:
    client = system.redis()
    try:
        return sum(client.xlen(stream_key(p)) for p in range(partitions))
    finally:
        client.close()


def test_concurrent_duplicates_are_enqueued_once_and_conflicts_get_409(system):
    system.start_api()
    body = posting(key="dup")
    answers = system.submit([body] * 40, concurrency=20)
    assert {status for _, status, _ in answers} == {202}
    assert len({a["stream_id"] for _, _, a in answers}) == 1, "every repeat returns the original answer"
    assert _stream_total(system) == 1
    other = {**body, "amount_minor": body["amount_minor"] + 1}
    [(_, status, answer)] = system.submit([other])
    assert status == 409 and answer["field"] == "event_id"
    assert _stream_total(system) == 1


@pytest.mark.parametrize(
    "change, field",
    [
        ({"amount_minor": 0}, "amount_minor"),
        ({"amount_minor": "12"}, "amount_minor"),
        ({"amount_minor": 10**13}, "amount_minor"),
        ({"currency": "XXX"}, "currency"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"credit_account": "alice"}, "credit_account"),
        ({"key": ""}, "key"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_postings_name_the_field_and_enqueue_nothing(system, change, field):
    if not system.api_port:
        system.start_api()
    [(_, status, answer)] = system.submit([{**posting(debit="alice"), **change}])
    assert status == 400
    assert answer["field"] == field and answer["error"] == "invalid" and answer["detail"]
    assert _stream_total(system) == 0


def test_oversized_and_malformed_bodies_are_refused(system):
    system.start_api("--max-body-bytes", "1024")
    with httpx.Client(base_url=system.url(""), timeout=5) as client:
        big = client.post("/v1/events", content=b"{" + b" " * 5000 + b"}", headers={"content-type": "application/json"})
        assert big.status_code == 413 and big.json()["field"] == "body"
        broken = client.post("/v1/events", content=b"{not json")
        assert broken.status_code == 400 and broken.json()["field"] == "body"
    assert _stream_total(system) == 0


def test_backpressure_answers_429_with_retry_after_past_the_mark(system):
    system.start_api("--high-water-mark", "50")
    answers = system.submit([posting(key=f"k{i}") for i in range(80)], concurrency=1)
    statuses = [status for _, status, _ in answers]
    assert statuses[:50] == [202] * 50
    assert set(statuses[50:]) == {429}
    assert _stream_total(system) == 50
    with httpx.Client(timeout=5) as client:
        response = client.post(system.url("/v1/events"), json=posting())
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("mode", [Mode.REFUSE, Mode.BLACKHOLE])
def test_broker_down_answers_503_fast_never_hangs(system, mode):
    port = int(system.redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = TcpProxy(port)
    try:
        system.start_api("--redis-timeout-ms", "300", redis_url=f"redis://127.0.0.1:{proxy.port}/0")
        assert system.submit([posting()])[0][1] == 202
        proxy.set_mode(mode)
        # A hang shows as the client's ReadTimeout (the API's own bound is 300 ms, the client's 10 s);
        # how fast the 503 comes is a figure in benchmarks/bench_timing.py, not an assertion.
        with httpx.Client(timeout=10) as client:
            for _ in range(5):
                response = client.post(system.url("/v1/events"), json=posting())
                assert response.status_code == 503, response.text
                assert int(response.headers["retry-after"]) >= 1
            health = client.get(system.url("/v1/health"))
            assert health.status_code == 503 and health.json()["status"] == "unavailable"
        proxy.set_mode(Mode.PASS)
        wait_for(lambda: system.submit([posting()])[0][1] == 202, 10, "ingest to recover after the broker returns")
    finally:
        proxy.close()


def test_get_event_reports_queued_then_posted_and_404_for_unknown(system):
    system.start_api()
    body = posting()
    system.submit([body])
    with httpx.Client(base_url=system.url(""), timeout=5) as client:
        assert client.get(f"/v1/events/{body['event_id']}").json()["status"] == "queued"
        assert client.get(f"/v1/events/{uuid.uuid4()}").status_code == 404
        assert client.get("/v1/events/nope").json()["field"] == "event_id"
        system.start_consumer("c1")
        wait_for(lambda: client.get(f"/v1/events/{body['event_id']}").json()["status"] == "posted", 30, "posted")


def test_health_metrics_and_openapi_are_served(system):
    system.start_api()
    system.start_consumer("c1")
    with httpx.Client(base_url=system.url(""), timeout=5) as client:
        wait_for(lambda: client.get("/v1/health").json()["consumers_alive"] == 1, 20, "one live consumer")
        health = client.get("/v1/health").json()
        assert health["status"] == "ok" and health["redis"] == "ok" and health["postgres"] == "ok"
        assert set(health["breaker"]) == {"p0", "p1", "p2", "p3"}
        text = client.get("/metrics").text
        for name in (
            'ledger_ingest_requests_total{outcome="accepted"}',
            "ledger_ingest_latency_seconds_bucket",
            "ledger_end_to_end_latency_seconds_bucket",
            'ledger_backlog_events{partition="0"}',
            "ledger_posted_events_total",
            "ledger_retries_total",
            "ledger_dead_letters_total",
            "ledger_consumer_inflight_events",
            "ledger_consumer_utilisation",
            'ledger_breaker_open{flow="p0"}',
        ):
            assert name in text, name
        spec = client.get("/openapi.json").json()
        assert "/v1/events" in spec["paths"] and "/v1/events/{event_id}" in spec["paths"]


def test_bad_flags_exit_2_and_a_partition_mismatch_refuses_to_start(system):
    import subprocess
    import sys

    base = [sys.executable, "-m", "reference_system"]
    urls = ["--redis-url", system.redis_url, "--postgres-url", system.postgres_url]
    bad = subprocess.run(
        [*base, "consumer", "--name", "c", *urls, "--batch-size", "0"], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2 and "--batch-size" in bad.stderr
    system.start_api()
    other = subprocess.run(
        [*base, "consumer", "--name", "c", *urls, "--partitions", "8"], capture_output=True, text=True, timeout=60
    )
    assert other.returncode == 3 and "--partitions 4" in other.stderr
