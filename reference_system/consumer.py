"""A consumer process: owns partitions by lease, applies their events to the ledger, acks after commit.

Why a worker per partition: order per key is order per partition, and a
partition is handled by one task with its own PostgreSQL connection, so batches
of one partition commit one after another while partitions run side by side.
The flow of one batch: read (pending first, then new) -> validate -> breaker
judges -> one ledger statement -> XACK+XDEL in one MULTI. Every Redis and
PostgreSQL call has a timeout (except in the `no_timeouts` variant).
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from reference_system import lease
from reference_system.backoff import delay_s
from reference_system.broker import ensure_groups
from reference_system.detector import Detector, Observation
from reference_system.keys import (
    BREAKER_HASH,
    CONSUMERS_ZSET,
    DLQ_STREAM,
    GROUP,
    consumer_counter_key,
    consumer_gauge_key,
    flow_name,
    idem_key,
    lease_key,
    stream_key,
)
from reference_system.ledger import ErrorKind, FencedOut, apply_batch, classify
from reference_system.metrics import E2E_BUCKETS_S, Histogram
from reference_system.posting import InvalidPosting, Posting, parse_stored
from reference_system.schema import ensure_schema
from reference_system.settings import Settings, Variant

__all__ = ["Consumer", "run_consumer", "HEARTBEAT_S"]

log = logging.getLogger("reference_system.consumer")

HEARTBEAT_S = 0.5
ALIVE_S = 3 * HEARTBEAT_S
BREAKER_POLL_S = 0.2
DLQ_MAXLEN = 1_000_000  # approximate cap on the dead-letter stream

# Dead-letter one entry: the DLQ record, the ack, the delete and the status, all or nothing.
_DEAD_LETTER = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[7], '*', 'event_id', ARGV[1], 'reason', ARGV[2],
           'attempts', ARGV[3], 'body', ARGV[4], 'partition', ARGV[5], 'consumer', ARGV[6])
redis.call('XACK', KEYS[2], ARGV[8], ARGV[9])
redis.call('XDEL', KEYS[2], ARGV[9])
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[3], 's', 'dead_lettered', 'r', ARGV[2])
end
return 1
"""


# Read only while the lease is ours, in one atomic step: a paused ex-owner that wakes up can no longer
# take entries out of its successor's reach (XREADGROUP delivers; a delivered entry is only claimed back
# when a partition changes hands, so it would be applied late, out of order).
# KEYS[1] lease, KEYS[2] stream; ARGV: owner|epoch, group, consumer, count, 'claim'|'read', claim cursor.
FENCED_READ = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if ARGV[5] == 'claim' then
  local r = redis.call('XAUTOCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, ARGV[6], 'COUNT', ARGV[4])
  return {1, r[1], r[2]}
end
local r = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4], 'STREAMS', KEYS[2], '>')
if r then return {1, '', r[1][2]} end
local info = redis.call('XINFO', 'STREAM', KEYS[2])
for j = 1, #info, 2 do
  if info[j] == 'last-generated-id' then return {1, info[j + 1], {}} end
end
return {1, '0-0', {}}
"""


class BatchEnd(enum.Enum):
    DONE = "done"
    HALTED = "halted"  # breaker open: entries stay pending
    LOST = "lost"  # lease lost or fenced out
    STOPPING = "stopping"


@dataclass
class Counters:
    """Published to Redis as deltas (HINCRBY), so totals survive a consumer restart."""

    posted: int = 0
    skipped_duplicates: int = 0
    retries: int = 0
    dead_letters: int = 0
    batches: int = 0
    busy_s: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)  # "retries_k_<kind>", "dead_letters_k_<kind>"
    e2e: Histogram = field(default_factory=lambda: Histogram(E2E_BUCKETS_S))


@dataclass
class Entry:
    stream_id: str
    body: bytes
    posting: Posting | None
    at_ms: int


class Consumer:
    """One consumer process's state; `run` until `stop` is set, then drain and release leases."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        redis_url: str,
        postgres_url: str,
        rng: random.Random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.settings = settings
        self.redis_url = redis_url
        self.postgres_url = postgres_url
        self.rng = rng
        self.clock = clock
        self.counters = Counters()
        self.inflight = 0
        self.stop = asyncio.Event()
        self.workers: dict[int, tuple[asyncio.Task, int, asyncio.Event]] = {}  # partition -> task, epoch, quit
        self.detectors: dict[int, Detector] = {}
        self._timeouts = settings.timeouts_on
        self._redis_s = settings.redis_timeout_ms / 1000 if self._timeouts else None
        self._pg_s = settings.postgres_timeout_ms / 1000 if self._timeouts else None
        self._block_ms = max(10, min(200, settings.redis_timeout_ms // 2))
        self._currencies = frozenset(settings.currencies)
        self._util_window_start = clock()
        self._busy_window_s = 0.0
        self.redis: aioredis.Redis = aioredis.from_url(
            redis_url,
            socket_timeout=(self._redis_s + self._block_ms / 1000) if self._timeouts else None,
            socket_connect_timeout=self._redis_s,
        )
        self._fenced_read = self.redis.register_script(FENCED_READ)  # EVALSHA, loads the script on NOSCRIPT

    # ----- process lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        await self._setup()
        gc.freeze()  # long-lived start-up objects out of the collector's sight: shorter full collections
        tasks = [asyncio.create_task(self._heartbeat_loop())]
        if self.settings.variant is Variant.NO_LEASE:
            # The defect: every consumer works every partition of the group, "the group balances it".
            for partition in range(self.settings.partitions):
                self._start_worker(partition, epoch=0)
        else:
            tasks.append(asyncio.create_task(self._lease_loop()))
        await self.stop.wait()
        await self._drain()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._publish()
        except (TimeoutError, RedisError, OSError):
            pass
        await self.redis.aclose()

    async def _setup(self) -> None:
        """Schema and groups, retried with backoff until the deadline (the stack may still be starting)."""
        deadline = self.clock() + 30
        attempt = 0
        while True:
            try:
                conn = await asyncpg.connect(self.postgres_url, timeout=self._pg_s or 60)
                try:
                    await ensure_schema(conn, self.settings.variant, self._pg_s)
                finally:
                    await conn.close()
                await ensure_groups(self.redis, self.settings.partitions)
                return
            except (TimeoutError, OSError, asyncpg.PostgresError, RedisError) as exc:
                if self.clock() > deadline or self.stop.is_set():
                    raise
                log.warning("setup failed (%s), retrying", exc)
                await asyncio.sleep(delay_s(attempt, 100, 1000, self.rng))
                attempt += 1

    async def _drain(self) -> None:
        """Let each worker finish its batch (it checks `stop` between batches), bounded by drain_s_max."""
        tasks = [task for task, _, _ in self.workers.values()]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=self.settings.drain_s_max)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for partition, (_, epoch, _) in list(self.workers.items()):
            await self._release(partition, epoch)
        self.workers.clear()

    async def _release(self, partition: int, epoch: int) -> None:
        if self.settings.variant is Variant.NO_LEASE:
            return
        try:
            async with asyncio.timeout(self._redis_s):
                await lease.release(self.redis, partition, self.name, epoch)
        except (RedisError, OSError, TimeoutError):
            pass  # the lease expires on its own

    # ----- leases ------------------------------------------------------------------------------

    async def _alive_consumers(self) -> int:
        now_ms = int(self.clock() * 1000)
        return int(await self.redis.zcount(CONSUMERS_ZSET, now_ms - int(ALIVE_S * 1000), "+inf"))

    async def _lease_loop(self) -> None:
        settings = self.settings
        period_s = settings.lease_ms / 3000
        offset = sum(self.name.encode()) % settings.partitions  # consumers start their scan at different places
        while not self.stop.is_set():
            try:
                async with asyncio.timeout(self._redis_s and 4 * self._redis_s):
                    await self._lease_round(offset)
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("lease round failed: %s", exc)
            try:
                await asyncio.wait_for(self.stop.wait(), period_s)
            except TimeoutError:
                pass

    async def _lease_round(self, offset: int) -> None:
        settings = self.settings
        for partition, (task, epoch, quit_event) in list(self.workers.items()):
            if task.done():
                self.workers.pop(partition)
                await self._release(partition, epoch)
            elif not await lease.renew(self.redis, partition, self.name, epoch, settings.lease_ms):
                quit_event.set()  # lost it: the worker stops before its next commit; the fence covers this one
        await self.redis.zadd(CONSUMERS_ZSET, {self.name: int(self.clock() * 1000)})
        alive = max(1, await self._alive_consumers())
        target = math.ceil(settings.partitions / alive)
        owned = [p for p, (t, _, q) in self.workers.items() if not q.is_set()]
        if len(owned) > target:
            for partition in owned[target:]:
                self.workers[partition][2].set()  # hand it over after the current batch
            return
        for i in range(settings.partitions):
            if len(owned) >= target:
                break
            partition = (offset + i) % settings.partitions
            if partition in self.workers:
                continue
            epoch = await lease.acquire(self.redis, partition, self.name, settings.lease_ms)
            if epoch is not None:
                self._start_worker(partition, epoch)
                owned.append(partition)

    def _start_worker(self, partition: int, epoch: int) -> None:
        quit_event = asyncio.Event()
        task = asyncio.create_task(self._worker(partition, epoch, quit_event))
        self.workers[partition] = (task, epoch, quit_event)

    # ----- heartbeat and metrics ---------------------------------------------------------------

    def _count(self, name: str) -> None:
        self.counters.by_kind[name] = self.counters.by_kind.get(name, 0) + 1

    def _retried(self, kind: str) -> None:
        self.counters.retries += 1
        self._count(f"retries_k_{kind}")

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self._redis_s and 4 * self._redis_s):
                    await self._publish()
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_S)

    async def _publish(self) -> None:
        c = self.counters
        now = self.clock()
        window_s = max(now - self._util_window_start, 1e-3)
        utilisation = min(1.0, self._busy_window_s / window_s)
        self._util_window_start, self._busy_window_s = now, 0.0
        counts, e2e_sum = c.e2e.take()
        deltas = {
            "posted": c.posted,
            "skipped_duplicates": c.skipped_duplicates,
            "retries": c.retries,
            "dead_letters": c.dead_letters,
            "batches": c.batches,
        }
        pipe = self.redis.pipeline(transaction=True)
        key = consumer_counter_key(self.name)
        for name, value in deltas.items():
            if value:
                pipe.hincrby(key, name, value)
        by_kind, c.by_kind = c.by_kind, {}
        for name, value in by_kind.items():
            pipe.hincrby(key, name, value)
        for i, n in enumerate(counts):
            if n:
                pipe.hincrby(key, f"e2e_{i}", n)
        if e2e_sum:
            pipe.hincrbyfloat(key, "e2e_sum", e2e_sum)
        if c.busy_s:
            pipe.hincrbyfloat(key, "busy_s", c.busy_s)
        gauges = consumer_gauge_key(self.name)
        pipe.hset(
            gauges,
            mapping={
                "inflight": self.inflight,
                "utilisation": round(utilisation, 4),
                "partitions": ",".join(str(p) for p in sorted(self.workers)),
                "heartbeat_ms": int(now * 1000),
            },
        )
        pipe.pexpire(gauges, int(ALIVE_S * 1000))
        pipe.zadd(CONSUMERS_ZSET, {self.name: int(now * 1000)})
        try:
            await pipe.execute()
        except BaseException:
            c.e2e.add(counts, e2e_sum)  # not published: keep for the next round
            for name, value in by_kind.items():
                c.by_kind[name] = c.by_kind.get(name, 0) + value
            raise
        c.posted = c.skipped_duplicates = c.retries = c.dead_letters = c.batches = 0
        c.busy_s = 0.0

    # ----- one partition -------------------------------------------------------------------------

    async def _connect(self) -> asyncpg.Connection:
        settings: dict[str, str] = {"application_name": f"ledger-{self.name}"}
        if self._timeouts:
            settings["statement_timeout"] = str(self.settings.postgres_timeout_ms)
            # A consumer paused (SIGSTOP, a VM freeze) between its statement and COMMIT holds the row
            # locks of the partition fence and of balances; the server ends such a session after this
            # long, so its successor is blocked for a bounded time, not until the pause ends.
            settings["idle_in_transaction_session_timeout"] = str(self.settings.postgres_timeout_ms)
        return await asyncpg.connect(
            self.postgres_url, timeout=self._pg_s or 3600, server_settings=settings, statement_cache_size=64
        )

    def _detector(self, partition: int) -> Detector:
        s = self.settings
        if partition not in self.detectors:
            self.detectors[partition] = Detector(
                s.breaker_warmup_events, s.breaker_amount_orders, s.breaker_rate_factor, s.breaker_rate_per_s_min
            )
        return self.detectors[partition]

    async def _worker(self, partition: int, epoch: int, quit_event: asyncio.Event) -> None:
        conn: asyncpg.Connection | None = None
        stream = stream_key(partition)
        claim_from: str | None = "0-0"  # pending entries first (a dead owner's, or held by the breaker)
        resume_action: str | None = None
        # In no_lease nobody owns the partition, so only entries idle for a lease period are taken over.
        min_idle_ms = self.settings.lease_ms if self.settings.variant is Variant.NO_LEASE else 0
        attempt = 0
        linger = False
        next_breaker_read = 0.0
        halted = False
        try:
            while not (self.stop.is_set() or quit_event.is_set()):
                try:
                    # While closed the breaker can only change here (a trip) or by a resume request,
                    # which is a no-op when closed: read it from Redis at most every BREAKER_POLL_S.
                    state = {}
                    if halted or self.clock() >= next_breaker_read:
                        state = await self._breaker_state(partition)
                        next_breaker_read = self.clock() + BREAKER_POLL_S
                        halted = state.get("state") == "open"
                    if halted:
                        await self._wait(quit_event, BREAKER_POLL_S)
                        continue
                    if state.get("state") == "resume":
                        resume_action = state.get("action", "apply")
                        claim_from = "0-0"
                        await self._set_breaker(partition, {"state": "closed", "resumed_with": resume_action})
                    if conn is None or conn.is_closed():
                        conn = await self._connect()
                    if self.settings.variant is Variant.NO_LEASE:
                        raw, claim_from = await self._read_unfenced(stream, claim_from, min_idle_ms, linger, quit_event)
                    else:
                        owned, raw, claim_from, last_id = await self._read_fenced(
                            partition, epoch, claim_from, linger, quit_event
                        )
                        if not owned:
                            log.warning("partition %s: lease lost, handing it on", partition)
                            break
                        if not raw and last_id:
                            # Nothing new: wait in Redis (XREAD does not deliver, so a stale owner
                            # waiting here takes nothing away from its successor).
                            await self.redis.xread({stream: last_id}, count=1, block=self._block_ms)
                    attempt = 0
                except (RedisError, OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    self._retried("read")
                    log.warning("partition %s: read failed: %s", partition, exc)
                    conn = await _discard(conn)
                    # The read may have delivered before its reply was lost: claim our pending entries
                    # first, or they wait for an owner change that may never come.
                    claim_from = "0-0"
                    await self._wait(quit_event, delay_s(attempt, 50, self.settings.backoff_ms_max, self.rng))
                    attempt += 1
                    continue
                linger = 0 < len(raw) < self.settings.batch_size // 2
                if not raw:
                    continue
                entries = [self._decode(item) for item in raw]
                started = self.clock()
                self.inflight += len(entries)
                try:
                    end, conn, tripped = await self._handle(partition, epoch, conn, entries, resume_action, quit_event)
                except (RedisError, OSError, TimeoutError) as exc:
                    log.warning("partition %s: batch interrupted, re-reading pending entries: %s", partition, exc)
                    self._retried("redis")
                    end, claim_from, tripped = BatchEnd.HALTED, "0-0", True
                    await self._wait(quit_event, delay_s(0, 50, self.settings.backoff_ms_max, self.rng))
                finally:
                    self.inflight -= len(entries)
                    busy = self.clock() - started
                    self.counters.busy_s += busy
                    self._busy_window_s += busy
                if not (resume_action == "dead_letter" and tripped):
                    resume_action = None  # dead_letter filtering lasts until a batch passes the detector
                if end is BatchEnd.HALTED:
                    claim_from = "0-0"
                    next_breaker_read = 0.0
                elif end is BatchEnd.LOST:
                    quit_event.set()
        except Exception:
            log.exception("partition %s: worker failed; the lease loop will hand the partition on", partition)
            raise
        finally:
            await _discard(conn)

    async def _read_fenced(
        self, partition: int, epoch: int, claim_from: str | None, linger: bool, quit_event: asyncio.Event
    ) -> tuple[bool, list, str | None, str]:
        """Claim pending entries or read new ones only while the lease is ours, atomically (FENCED_READ).

        Returns (still owner, entries, next claim cursor or None, stream's last id when nothing new).
        """
        if claim_from is None and linger and self.settings.linger_ms:
            # The last batch was small: let the stream fill a little, so one transaction
            # carries many events instead of a few (Kafka's linger.ms, same trade).
            await self._wait(quit_event, self.settings.linger_ms / 1000)
        mode = "claim" if claim_from is not None else "read"
        async with asyncio.timeout(self._redis_s):
            reply = await self._fenced_read(
                keys=[lease_key(partition), stream_key(partition)],
                args=[f"{self.name}|{epoch}", GROUP, self.name, self.settings.batch_size, mode, claim_from or "0-0"],
            )
        if int(reply[0]) == 0:
            return False, [], claim_from, ""
        marker = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        raw = [(item[0], _fields(item[1])) for item in (reply[2] or []) if item and item[1]]
        if mode == "claim":
            return True, raw, (None if marker == "0-0" else marker), ""
        return True, raw, None, ("" if raw else marker)

    async def _read_unfenced(self, stream: str, claim_from: str | None, min_idle_ms: int, linger: bool, quit_event):
        """The no_lease variant's reads: plain XAUTOCLAIM / XREADGROUP BLOCK, whoever calls."""
        if claim_from is not None:
            async with asyncio.timeout(self._redis_s):
                reply = await self.redis.xautoclaim(
                    stream, GROUP, self.name, min_idle_ms, claim_from, count=self.settings.batch_size
                )
            next_id = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
            return [item for item in reply[1] if item and item[1]], (None if next_id == "0-0" else next_id)
        if linger and self.settings.linger_ms:
            await self._wait(quit_event, self.settings.linger_ms / 1000)
        reply = await self.redis.xreadgroup(
            GROUP, self.name, {stream: ">"}, count=self.settings.batch_size, block=self._block_ms
        )
        return (reply[0][1] if reply else []), None

    def _decode(self, item: tuple) -> Entry:
        raw_id, fields = item
        stream_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        body = fields.get(b"b", b"")
        try:
            posting = parse_stored(body, self._currencies, self.settings.amount_minor_max)
        except InvalidPosting:
            posting = None
        return Entry(stream_id, body, posting, int(stream_id.split("-", 1)[0]))

    async def _wait(self, quit_event: asyncio.Event, seconds: float) -> None:
        """Sleep that ends early on stop: backoff must never delay a SIGTERM drain."""
        waiters = [asyncio.ensure_future(self.stop.wait()), asyncio.ensure_future(quit_event.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _breaker_state(self, partition: int) -> dict:
        if not self.settings.breaker_enabled:
            return {}
        async with asyncio.timeout(self._redis_s):
            raw = await self.redis.hget(BREAKER_HASH, flow_name(partition))
        return orjson.loads(raw) if raw else {}

    async def _set_breaker(self, partition: int, state: dict) -> None:
        state = {**state, "since_ms": int(self.clock() * 1000), "consumer": self.name}
        async with asyncio.timeout(self._redis_s):
            await self.redis.hset(BREAKER_HASH, flow_name(partition), orjson.dumps(state))

    async def _handle(
        self,
        partition: int,
        epoch: int,
        conn: asyncpg.Connection,
        entries: list[Entry],
        resume_action: str | None,
        quit_event: asyncio.Event,
    ) -> tuple[BatchEnd, asyncpg.Connection | None, bool]:
        """One batch, start to ack: how it ended, the (possibly replaced) connection, whether the detector tripped."""
        tripped = False
        good: list[Entry] = []
        for entry in entries:
            if entry.posting is None:
                reason = "invalid: " + _invalid_reason(entry.body, self)
                await self._dead_letter(partition, entry, reason, 1, quit_event)
            else:
                good.append(entry)
        if not good:
            return BatchEnd.DONE, conn, tripped
        detector = self._detector(partition)
        observations = [Observation(e.posting.debit_account, e.posting.amount_minor, e.at_ms) for e in good]
        if self.settings.breaker_enabled and resume_action != "apply":
            verdict = detector.judge(observations)
            tripped = verdict.trip
            if verdict.trip and resume_action == "dead_letter":
                suspects = set(verdict.suspects) or set(range(len(good)))
                for i in sorted(suspects):
                    why = detector.explain(observations[i]) if verdict.suspects else verdict.reason
                    await self._dead_letter(partition, good[i], "anomaly: " + why, 1, quit_event)
                good = [e for i, e in enumerate(good) if i not in suspects]
                observations = [o for i, o in enumerate(observations) if i not in suspects]
            elif verdict.trip:
                await self._set_breaker(partition, {"state": "open", "reason": verdict.reason, "held": len(good)})
                log.warning("partition %s: breaker open: %s", partition, verdict.reason)
                return BatchEnd.HALTED, conn, True
        elif resume_action == "apply" and observations:
            span_s = max((observations[-1].at_ms - observations[0].at_ms) / 1000, 1.0)
            detector.accept_rate(len(observations) / span_s)
        if not good:
            return BatchEnd.DONE, conn, tripped
        if self.settings.variant is Variant.ACK_BEFORE_COMMIT:
            # The defect: "ack as soon as we have it in memory, the commit follows right away".
            await self._ack(partition, good, quit_event)
        end, conn = await self._apply_with_retries(partition, epoch, conn, good, quit_event)
        if end is not BatchEnd.DONE:
            return end, conn, tripped
        if self.settings.variant is not Variant.ACK_BEFORE_COMMIT:
            if not await self._ack(partition, good, quit_event):
                return BatchEnd.STOPPING, conn, tripped
        detector.learn(observations)
        now_ms = self.clock() * 1000
        for entry in good:
            self.counters.e2e.observe(max(0.0, (now_ms - entry.at_ms) / 1000))
        self.counters.batches += 1
        return BatchEnd.DONE, conn, tripped

    async def _apply_with_retries(
        self, partition: int, epoch: int, conn: asyncpg.Connection | None, good: list[Entry], quit_event
    ) -> tuple[BatchEnd, asyncpg.Connection | None]:
        attempts = 0
        waits = 0
        while True:
            if self.stop.is_set() and waits:
                return BatchEnd.STOPPING, conn
            try:
                if conn is None or conn.is_closed():
                    conn = await self._connect()
                result = await apply_batch(
                    conn, self.settings.variant, partition, epoch, self.name, [e.posting for e in good], self._pg_s
                )
                self.counters.posted += result.inserted
                self.counters.skipped_duplicates += len(good) - result.inserted
                return BatchEnd.DONE, conn
            except FencedOut as exc:
                log.warning("%s", exc)
                return BatchEnd.LOST, conn
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                kind = classify(exc)
                self._retried(kind.value)
                if kind is ErrorKind.UNAVAILABLE:
                    conn = await _discard(conn)
                    await self._wait(
                        quit_event,
                        delay_s(waits, self.settings.backoff_ms_base, self.settings.backoff_ms_max, self.rng),
                    )
                    waits += 1
                    if quit_event.is_set():
                        return BatchEnd.LOST, conn
                    continue
                attempts += 1
                if kind is ErrorKind.TRANSIENT and attempts < self.settings.max_attempts:
                    await self._wait(
                        quit_event,
                        delay_s(attempts, self.settings.backoff_ms_base, self.settings.backoff_ms_max, self.rng),
                    )
                    continue
                if len(good) == 1:
                    reason = f"{'poison' if kind is ErrorKind.POISON else 'retries exhausted'}: postgres {getattr(exc, 'sqlstate', '')} {exc}"
                    await self._dead_letter(partition, good[0], reason.strip(), attempts, quit_event)
                    return BatchEnd.DONE, conn
                return await self._one_by_one(partition, epoch, conn, good, quit_event)

    async def _one_by_one(self, partition, epoch, conn, good: list[Entry], quit_event):
        """A batch was refused: apply its events singly so only the culprit is dead-lettered."""
        for entry in good:
            end, conn = await self._apply_with_retries(partition, epoch, conn, [entry], quit_event)
            if end is not BatchEnd.DONE:
                return end, conn
        return BatchEnd.DONE, conn

    async def _ack(self, partition: int, entries: list[Entry], quit_event) -> bool:
        """XACK and XDEL together (MULTI); retried until done or stopping (a missed ack only redelivers)."""
        ids = [e.stream_id for e in entries]
        stream = stream_key(partition)
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(self._redis_s):
                    pipe = self.redis.pipeline(transaction=True)
                    pipe.xack(stream, GROUP, *ids)
                    pipe.xdel(stream, *ids)
                    await pipe.execute()
                return True
            except (RedisError, OSError, TimeoutError) as exc:
                self._retried("redis")
                if self.stop.is_set() or attempt >= 20:
                    log.warning("partition %s: ack failed, entries will be redelivered: %s", partition, exc)
                    return False
                await self._wait(quit_event, delay_s(attempt, 50, self.settings.backoff_ms_max, self.rng))
                attempt += 1

    async def _dead_letter(self, partition: int, entry: Entry, reason: str, attempts: int, quit_event) -> None:
        event_id = entry.posting.event_id if entry.posting else _event_id_of(entry.body)
        stream = stream_key(partition)
        for attempt in range(20):
            try:
                async with asyncio.timeout(self._redis_s):
                    await self.redis.eval(
                        _DEAD_LETTER,
                        3,
                        DLQ_STREAM,
                        stream,
                        idem_key(event_id) if event_id else "ledger:idem:-",
                        event_id,
                        reason[:1000],
                        attempts,
                        entry.body,
                        partition,
                        self.name,
                        DLQ_MAXLEN,
                        GROUP,
                        entry.stream_id,
                    )
                self.counters.dead_letters += 1
                kind = reason.split(":", 1)[0].replace("retries exhausted", "exhausted")
                self._count(f"dead_letters_k_{kind}")
                log.warning("partition %s: dead-lettered %s: %s", partition, event_id or entry.stream_id, reason)
                return
            except (RedisError, OSError, TimeoutError):
                self._retried("redis")
                if self.stop.is_set():
                    return  # stays pending; the next owner dead-letters it again
                await self._wait(quit_event, delay_s(attempt, 50, self.settings.backoff_ms_max, self.rng))


def _fields(flat: list) -> dict:
    """A script returns an entry's fields as a flat [name, value, ...] list."""
    if isinstance(flat, dict):
        return flat
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}


def _event_id_of(body: bytes) -> str:
    try:
        value = orjson.loads(body).get("event_id", "")
        return value if isinstance(value, str) and len(value) <= 64 else ""
    except (orjson.JSONDecodeError, AttributeError):
        return ""


def _invalid_reason(body: bytes, consumer: Consumer) -> str:
    try:
        parse_stored(body, consumer._currencies, consumer.settings.amount_minor_max)
    except InvalidPosting as exc:
        return str(exc)
    return "unknown"


async def _discard(conn: asyncpg.Connection | None) -> None:
    """Drop a connection whose state is unknown (a timeout mid-query): never reuse it."""
    if conn is not None and not conn.is_closed():
        conn.terminate()
    return None


async def run_consumer(name: str, settings: Settings, redis_url: str, postgres_url: str, seed: int) -> Consumer:
    """Run a consumer until SIGTERM/SIGINT; the signal sets `stop`, the drain is bounded."""
    import signal
    import sys

    consumer = Consumer(name, settings, redis_url, postgres_url, random.Random(seed))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, consumer.stop.set)
    main = sys.modules.get("__main__")
    if getattr(main, "STOP_REQUESTED", None):  # SIGTERM arrived while the process was importing
        consumer.stop.set()
    await consumer.run()
    return consumer
