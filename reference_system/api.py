"""The ingest API as a raw ASGI app: POST/GET events, health, metrics, OpenAPI, breaker resume.

Why raw ASGI and not a framework: the throughput goal is a large share of a bare
HTTP->XADD endpoint, so each request does the minimum: read a bounded body,
validate, one pipelined Redis script call, one orjson answer.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from reference_system.broker import (
    BrokerUnavailable,
    Enqueuer,
    Outcome,
    PartitionMismatch,
    backlog_by_partition,
    ensure_groups,
)
from reference_system.consumer import ALIVE_S
from reference_system.keys import (
    BREAKER_HASH,
    CONSUMERS_ZSET,
    DLQ_STREAM,
    consumer_counter_key,
    consumer_gauge_key,
    flow_name,
    idem_key,
    partition_of,
)
from reference_system.metrics import E2E_BUCKETS_S, INGEST_BUCKETS_S, Family, Histogram, render
from reference_system.posting import InvalidPosting, parse_posting
from reference_system.schema import ensure_schema
from reference_system.settings import Settings

__all__ = ["IngestApp", "OPENAPI_PATH"]

log = logging.getLogger("reference_system.api")

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
OUTCOMES = ("accepted", "duplicate", "conflict", "invalid", "backpressure", "unavailable", "too_large")
SETUP_S_MAX = 30.0

_JSON = [(b"content-type", b"application/json")]


class IngestApp:
    """ASGI callable. State is created in the lifespan startup and closed at shutdown."""

    def __init__(
        self, settings: Settings, redis_url: str, postgres_url: str, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.postgres_url = postgres_url
        self.clock = clock
        self._redis_s = settings.redis_timeout_ms / 1000 if settings.timeouts_on else None
        self._pg_s = settings.postgres_timeout_ms / 1000 if settings.timeouts_on else None
        self._currencies = frozenset(settings.currencies)
        self._retry_after = [(b"retry-after", str(settings.retry_after_s).encode())]
        self.outcomes = {name: 0 for name in OUTCOMES}
        self.ingest_latency = Histogram(INGEST_BUCKETS_S)
        self.redis: aioredis.Redis | None = None
        self.enqueuer: Enqueuer | None = None
        self.pg: asyncpg.Pool | None = None
        self._openapi = OPENAPI_PATH.read_bytes()

    # ----- lifecycle -----------------------------------------------------------------------------

    async def startup(self) -> None:
        self.redis = aioredis.from_url(
            self.redis_url,
            socket_timeout=self._redis_s,
            socket_connect_timeout=self._redis_s,
            max_connections=64,
        )
        deadline = time.monotonic() + SETUP_S_MAX
        while True:
            try:
                await ensure_groups(self.redis, self.settings.partitions)
                self.pg = await asyncpg.create_pool(
                    self.postgres_url,
                    min_size=1,
                    max_size=4,
                    timeout=self._pg_s or 3600,
                    command_timeout=self._pg_s,
                )
                async with self.pg.acquire(timeout=self._pg_s) as conn:
                    await ensure_schema(conn, self.settings.variant, self._pg_s)
                break
            except PartitionMismatch:
                raise
            except (TimeoutError, RedisError, OSError, asyncpg.PostgresError) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"could not reach Redis/PostgreSQL within {SETUP_S_MAX:g} s: {exc}") from exc
                log.warning("startup: %s; retrying", exc)
                await asyncio.sleep(0.2)
        self.enqueuer = Enqueuer(self.redis, self.settings)
        await self.enqueuer.start()
        # Everything allocated so far (modules, pools) lives as long as the process: move it out of
        # the collector's sight, so full collections stay short and do not show up in latency p99.
        gc.freeze()

    async def shutdown(self) -> None:
        if self.enqueuer:
            await self.enqueuer.stop()
        if self.pg:
            try:
                await asyncio.wait_for(self.pg.close(), 2.0)
            except (TimeoutError, OSError):
                self.pg.terminate()
        if self.redis:
            await self.redis.aclose()

    # ----- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # reported to uvicorn, which exits non-zero
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict, receive: Callable, send: Callable) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        try:
            if path == "/v1/events" and method == "POST":
                await self._post_event(scope, receive, send)
            elif path.startswith("/v1/events/") and method == "GET":
                await self._get_event(path[len("/v1/events/") :], send)
            elif path == "/v1/health" and method == "GET":
                await self._health(send)
            elif path == "/metrics" and method == "GET":
                await _send(send, 200, await self._metrics(), [(b"content-type", b"text/plain; version=0.0.4")])
            elif path == "/openapi.json" and method == "GET":
                await _send(send, 200, self._openapi, _JSON)
            elif path.startswith("/v1/breaker/") and path.endswith("/resume") and method == "POST":
                await self._resume(path[len("/v1/breaker/") : -len("/resume")], receive, send)
            else:
                await _error(send, 404, "not_found", "path", f"no route for {method} {path}; see /openapi.json")
        except Exception:  # a bug must still answer, and be logged with its traceback
            log.exception("unhandled error on %s %s", method, path)
            await _error(send, 500, "internal", "", "unexpected error; see the API log")

    # ----- POST /v1/events -----------------------------------------------------------------------

    async def _post_event(self, scope: dict, receive: Callable, send: Callable) -> None:
        started = self.clock()
        status, body, headers, outcome = await self._ingest(scope, receive)
        self.outcomes[outcome] += 1
        await _send(send, status, body, headers)
        self.ingest_latency.observe(self.clock() - started)

    async def _ingest(self, scope: dict, receive: Callable) -> tuple[int, bytes, list, str]:
        limit = self.settings.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return 413, _err("too_large", "body", f"body is over {limit} bytes"), _JSON, "too_large"
        raw = await _read_body(receive, limit)
        if raw is None:
            return 413, _err("too_large", "body", f"body is over {limit} bytes"), _JSON, "too_large"
        try:
            posting = parse_posting(raw, self._currencies, self.settings.amount_minor_max)
        except InvalidPosting as exc:
            return 400, _err("invalid", exc.field, exc.detail), _JSON, "invalid"
        partition = partition_of(posting.key, self.settings.partitions)
        try:
            result = await self.enqueuer.enqueue(posting.event_id, partition, posting.canonical())
        except BrokerUnavailable as exc:
            return (
                503,
                _err("unavailable", "", f"broker unavailable, retry later: {exc}"),
                _JSON + self._retry_after,
                "unavailable",
            )
        if result.outcome is Outcome.CONFLICT:
            detail = "this event_id was already accepted with another body; use a new event_id"
            return 409, _err("conflict", "event_id", detail), _JSON, "conflict"
        if result.outcome is Outcome.BACKPRESSURE:
            detail = f"backlog {result.backlog} is at the high-water mark {self.settings.high_water_mark}; retry later"
            return 429, _err("backpressure", "", detail), _JSON + self._retry_after, "backpressure"
        answer = orjson.dumps(
            {"event_id": posting.event_id, "status": "queued", "partition": partition, "stream_id": result.stream_id}
        )
        return 202, answer, _JSON, "accepted" if result.outcome is Outcome.ACCEPTED else "duplicate"

    # ----- GET /v1/events/{id} -------------------------------------------------------------------

    async def _get_event(self, raw_id: str, send: Callable) -> None:
        try:
            event_id = str(uuid.UUID(raw_id))
        except ValueError:
            await _error(send, 400, "invalid", "event_id", f"{raw_id[:64]!r} is not a UUID")
            return
        record: list = [None, None, None]
        redis_ok = True
        try:
            async with asyncio.timeout(self._redis_s):
                record = await self.redis.hmget(idem_key(event_id), "s", "r", "p")
        except (RedisError, OSError, TimeoutError):
            redis_ok = False
        status, reason, partition = (v.decode() if isinstance(v, bytes) else v for v in record)
        if status == "dead_lettered":
            await _send(
                send, 200, orjson.dumps({"event_id": event_id, "status": "dead_lettered", "reason": reason}), _JSON
            )
            return
        try:
            async with asyncio.timeout(self._pg_s):
                posted = await self.pg.fetchval(
                    "SELECT seq FROM journal WHERE event_id = $1 LIMIT 1", uuid.UUID(event_id)
                )
        except (asyncpg.PostgresError, OSError, TimeoutError, asyncpg.InterfaceError):
            await _error(send, 503, "unavailable", "", "ledger unreachable, retry later", self._retry_after)
            return
        if posted is not None:
            await _send(send, 200, orjson.dumps({"event_id": event_id, "status": "posted", "seq": posted}), _JSON)
        elif not redis_ok:
            await _error(send, 503, "unavailable", "", "broker unreachable, retry later", self._retry_after)
        elif status is None:
            await _error(send, 404, "not_found", "event_id", "no event with this id was accepted")
        else:
            body = {"event_id": event_id, "status": "queued", "partition": int(partition or 0)}
            await _send(send, 200, orjson.dumps(body), _JSON)

    # ----- health, metrics, breaker ---------------------------------------------------------------

    async def _system(self) -> dict[str, Any]:
        """What the API can see of the whole system in one pipelined round trip."""
        now_ms = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(BREAKER_HASH)
        pipe.zrange(CONSUMERS_ZSET, 0, -1, withscores=True)
        pipe.xlen(DLQ_STREAM)
        async with asyncio.timeout(self._redis_s):
            breaker_raw, consumers, dlq = await pipe.execute()
            backlog = await backlog_by_partition(self.redis, self.settings.partitions)
            names = [n.decode() for n, _ in consumers]
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(consumer_counter_key(name))
                pipe.hgetall(consumer_gauge_key(name))
            replies = await pipe.execute() if names else []
        breaker = {flow_name(p): "closed" for p in range(self.settings.partitions)}
        reasons = {}
        for flow, raw in breaker_raw.items():
            state = orjson.loads(raw)
            breaker[flow.decode()] = state.get("state", "closed")
            if state.get("reason"):
                reasons[flow.decode()] = state["reason"]
        alive = sum(1 for _, score in consumers if score >= now_ms - ALIVE_S * 1000)
        per_consumer = {
            name: (
                {k.decode(): v.decode() for k, v in replies[2 * i].items()},
                {k.decode(): v.decode() for k, v in replies[2 * i + 1].items()},
            )
            for i, name in enumerate(names)
        }
        return {
            "breaker": breaker,
            "breaker_reasons": reasons,
            "consumers_alive": alive,
            "dlq": int(dlq),
            "backlog": backlog,
            "consumers": per_consumer,
        }

    async def _health(self, send: Callable) -> None:
        body: dict[str, Any] = {"variant": self.settings.variant.value, "partitions": self.settings.partitions}
        try:
            async with asyncio.timeout(self._redis_s):
                await self.redis.ping()
            system = await self._system()
            body.update(
                redis="ok",
                breaker=system["breaker"],
                breaker_reasons=system["breaker_reasons"],
                consumers_alive=system["consumers_alive"],
                backlog_events=sum(system["backlog"]),
                dead_letters=system["dlq"],
            )
        except (RedisError, OSError, TimeoutError) as exc:
            body.update(redis=f"error: {type(exc).__name__}: {exc}", breaker={}, consumers_alive=0)
        try:
            async with asyncio.timeout(self._pg_s):
                await self.pg.fetchval("SELECT 1")
            body["postgres"] = "ok"
        except (asyncpg.PostgresError, OSError, TimeoutError, asyncpg.InterfaceError) as exc:
            body["postgres"] = f"error: {type(exc).__name__}: {exc}"
        redis_ok = body["redis"] == "ok"
        body["status"] = "ok" if redis_ok and body["postgres"] == "ok" else ("degraded" if redis_ok else "unavailable")
        await _send(send, 200 if redis_ok else 503, orjson.dumps(body), _JSON + ([] if redis_ok else self._retry_after))

    async def _metrics(self) -> bytes:
        families = [
            Family("ledger_ingest_requests_total", "counter", "POST /v1/events answers by outcome."),
            Family("ledger_ingest_latency_seconds", "histogram", "Time from request to answer at the API."),
        ]
        for outcome, n in self.outcomes.items():
            families[0].add(n, outcome=outcome)
        families[1].samples = self.ingest_latency.samples("ledger_ingest_latency_seconds")
        try:
            system = await self._system()
        except (RedisError, OSError, TimeoutError):
            families.append(Family("ledger_system_visible", "gauge", "1 when Redis answered this scrape.").add(0))
            return render(families)
        totals: dict[str, float] = {}
        by_kind: dict[str, float] = {}
        e2e = Histogram(E2E_BUCKETS_S)
        inflight = 0.0
        utilisation = Family(
            "ledger_consumer_utilisation", "gauge", "Share of time each live consumer spent applying batches."
        )
        for name, (counters, gauges) in system["consumers"].items():
            for key in ("posted", "retries", "dead_letters", "batches", "skipped_duplicates", "busy_s"):
                totals[key] = totals.get(key, 0.0) + float(counters.get(key, 0))
            for key, value in counters.items():
                if "_k_" in key:
                    by_kind[key] = by_kind.get(key, 0.0) + float(value)
            e2e.add(
                [int(counters.get(f"e2e_{i}", 0)) for i in range(len(E2E_BUCKETS_S) + 1)],
                float(counters.get("e2e_sum", 0)),
            )
            if gauges:
                inflight += float(gauges.get("inflight", 0))
                utilisation.add(float(gauges.get("utilisation", 0)), consumer=name)
        backlog = Family("ledger_backlog_events", "gauge", "Events accepted and not yet acknowledged, per partition.")
        for partition, n in enumerate(system["backlog"]):
            backlog.add(n, partition=str(partition))
        breaker = Family("ledger_breaker_open", "gauge", "1 while the anomaly breaker halts a flow (partition).")
        for flow, state in system["breaker"].items():
            breaker.add(0 if state == "closed" else 1, flow=flow)
        hist = Family("ledger_end_to_end_latency_seconds", "histogram", "Broker acceptance to ledger commit.")
        hist.samples = e2e.samples("ledger_end_to_end_latency_seconds")
        retries_kind = Family(
            "ledger_retries_by_kind_total", "counter", "Retries by cause: read, redis, unavailable, transient, poison."
        )
        letters_kind = Family(
            "ledger_dead_letters_by_kind_total",
            "counter",
            "Dead letters by cause: invalid, poison, exhausted, anomaly.",
        )
        for key, value in sorted(by_kind.items()):
            prefix, kind = key.split("_k_", 1)
            (retries_kind if prefix == "retries" else letters_kind).add(value, kind=kind)
        families += [
            hist,
            backlog,
            Family("ledger_posted_events_total", "counter", "Events newly written to the journal.").add(
                totals.get("posted", 0)
            ),
            Family("ledger_skipped_duplicates_total", "counter", "Redelivered events the journal already held.").add(
                totals.get("skipped_duplicates", 0)
            ),
            Family("ledger_batches_total", "counter", "Batches committed.").add(totals.get("batches", 0)),
            Family("ledger_retries_total", "counter", "Retried downstream calls (any kind).").add(
                totals.get("retries", 0)
            ),
            Family("ledger_dead_letters_total", "counter", "Events sent to the dead-letter queue.").add(
                totals.get("dead_letters", 0)
            ),
            retries_kind,
            letters_kind,
            Family("ledger_dead_letter_queue_events", "gauge", "Entries in ledger:dlq.").add(system["dlq"]),
            Family(
                "ledger_consumer_inflight_events", "gauge", "Events read and not yet acknowledged by live consumers."
            ).add(inflight),
            utilisation,
            Family("ledger_consumers_alive", "gauge", "Consumers with a fresh heartbeat.").add(
                system["consumers_alive"]
            ),
            breaker,
        ]
        return render(families)

    async def _resume(self, flow: str, receive: Callable, send: Callable) -> None:
        if flow not in {flow_name(p) for p in range(self.settings.partitions)}:
            await _error(
                send, 404, "not_found", "flow", f"{flow!r} is not a flow; flows are p0..p{self.settings.partitions - 1}"
            )
            return
        raw = await _read_body(receive, 1024) or b"{}"
        try:
            action = (orjson.loads(raw) or {}).get("action", "apply")
        except (orjson.JSONDecodeError, AttributeError):
            action = None
        if action not in ("apply", "dead_letter"):
            await _error(
                send, 400, "invalid", "action", "must be 'apply' (the held events are legitimate) or 'dead_letter'"
            )
            return
        state = orjson.dumps({"state": "resume", "action": action, "since_ms": int(time.time() * 1000)})
        try:
            async with asyncio.timeout(self._redis_s):
                await self.redis.hset(BREAKER_HASH, flow, state)
        except (RedisError, OSError, TimeoutError):
            await _error(send, 503, "unavailable", "", "broker unreachable, retry later", self._retry_after)
            return
        await _send(send, 202, orjson.dumps({"flow": flow, "action": action}), _JSON)


async def _read_body(receive: Callable, limit: int) -> bytes | None:
    """The request body, or None once it passes `limit` bytes (the rest is not buffered)."""
    message = await receive()
    first = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: the whole body in one message
        return first if len(first) <= limit else None
    chunks: list[bytes] = [first]
    size = len(first)
    if size > limit:
        return None
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _err(error: str, field: str, detail: str) -> bytes:
    return orjson.dumps({"error": error, "field": field, "detail": detail})


async def _error(send: Callable, status: int, error: str, field: str, detail: str, headers: list = ()) -> None:
    await _send(send, status, _err(error, field, detail), _JSON + list(headers))


async def _send(send: Callable, status: int, body: bytes, headers: list) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
