"""The broker side of ingest: one atomic Redis script that records the idempotency key and XADDs.

Why a script: the idempotency record and the stream entry must exist together or
not at all, whatever crashes; a Lua script runs atomically in Redis, in one round
trip. Why a batcher: concurrent requests are pipelined into one write to Redis,
which is what lets one Python process keep up with the load (see `Enqueuer`).
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from reference_system.keys import GROUP, idem_key, stream_key
from reference_system.settings import Settings, Variant

CONFIG_HASH = "ledger:config"

__all__ = [
    "PartitionMismatch",
    "Outcome",
    "EnqueueResult",
    "Enqueuer",
    "BrokerUnavailable",
    "ensure_groups",
    "backlog_by_partition",
]

# KEYS[1] idempotency record, KEYS[2] target stream, KEYS[3..] every partition stream (backlog).
# ARGV[1] canonical body, ARGV[2] high-water mark (-1: none), ARGV[3] record TTL s,
# ARGV[4] partition, ARGV[5] '1' to consult the record before enqueueing.
ENQUEUE_LUA = """
if ARGV[5] == '1' then
  local prev = redis.call('HMGET', KEYS[1], 'b', 'id')
  if prev[1] then
    if prev[1] == ARGV[1] then return {1, prev[2]} end
    return {2, ''}
  end
end
local hwm = tonumber(ARGV[2])
if hwm >= 0 then
  local backlog = 0
  for i = 3, #KEYS do backlog = backlog + redis.call('XLEN', KEYS[i]) end
  if backlog >= hwm then return {3, tostring(backlog)} end
end
local id = redis.call('XADD', KEYS[2], '*', 'b', ARGV[1])
redis.call('HSET', KEYS[1], 'b', ARGV[1], 'id', id, 'p', ARGV[4], 's', 'queued')
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {0, id}
"""

BATCH_MAX = 256
QUEUE_MAX = 8_192
FAIL_FAST_S = 0.1


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    BACKPRESSURE = "backpressure"


@dataclass(frozen=True)
class EnqueueResult:
    outcome: Outcome
    stream_id: str = ""
    backlog: int = 0


class BrokerUnavailable(Exception):
    """Redis refused, failed or did not answer within its timeout: the event may or may not be queued."""


class PartitionMismatch(RuntimeError):
    """This process was started with another --partitions than the data already in Redis."""


async def ensure_groups(client: aioredis.Redis, partitions: int) -> None:
    """Create the consumer group on every partition stream; already present is fine.

    Also pins the partition count in Redis (`ledger:config`): a process started with another
    --partitions would hash keys to other streams and break per-key order, so it refuses to start.
    """
    await client.hsetnx(CONFIG_HASH, "partitions", partitions)
    pinned = int(await client.hget(CONFIG_HASH, "partitions"))
    if pinned != partitions:
        raise PartitionMismatch(
            f"--partitions {partitions} differs from the {pinned} partitions this Redis already holds; "
            f"start every process with --partitions {pinned}, or use an empty Redis"
        )
    for partition in range(partitions):
        try:
            await client.xgroup_create(stream_key(partition), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def backlog_by_partition(client: aioredis.Redis, partitions: int) -> list[int]:
    """Unacknowledged events per partition (consumers XDEL after XACK, so XLEN is the backlog)."""
    pipe = client.pipeline(transaction=False)
    for partition in range(partitions):
        pipe.xlen(stream_key(partition))
    return [int(n) for n in await pipe.execute()]


class Enqueuer:
    """Pipelines concurrent enqueue calls: each caller awaits its own result, Redis sees one write.

    Bounded: at most QUEUE_MAX callers wait; beyond that the caller gets
    BrokerUnavailable at once (the API answers 503), never an unbounded queue;
    and no caller waits longer than the Redis timeout, time in the queue included.
    After a failed write, callers fail at once for FAIL_FAST_S, so a dead broker
    costs each request microseconds, not a timeout.
    """

    def __init__(self, client: aioredis.Redis, settings: Settings, flushers: int = 2) -> None:
        self._client = client
        self._settings = settings
        self._queue: asyncio.Queue[tuple[bytes, int, bytes, asyncio.Future]] = asyncio.Queue(QUEUE_MAX)
        self._sha: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._flushers = flushers
        self._timeout_s: float | None = settings.redis_timeout_ms / 1000 if settings.timeouts_on else None
        self._down_until = 0.0  # loop time before which requests fail at once (Redis just failed)
        hwm = -1 if settings.variant is Variant.NO_BACKPRESSURE else settings.high_water_mark
        check = b"0" if settings.variant is Variant.NO_IDEMPOTENCY else b"1"
        # The parts of every EVALSHA that do not change, packed once (RESP bulk strings): redis-py's
        # generic command packer cost more CPU per request than the rest of the handler.
        all_streams = b"".join(_bulk(stream_key(p).encode()) for p in range(settings.partitions))
        self._packed_numkeys = _bulk(str(2 + settings.partitions).encode())
        self._header = b"*%d\r\n" % (3 + 2 + settings.partitions + 5)
        self._streams = [_bulk(stream_key(p).encode()) + all_streams for p in range(settings.partitions)]
        self._middle = _bulk(str(hwm).encode()) + _bulk(str(settings.idempotency_ttl_s).encode())
        self._tails = [_bulk(str(p).encode()) + _bulk(check) for p in range(settings.partitions)]

    async def start(self) -> None:
        for _ in range(self._flushers):
            self._tasks.append(asyncio.create_task(self._flush_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        while not self._queue.empty():
            *_, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(BrokerUnavailable("API is stopping"))

    async def enqueue(self, event_id: str, partition: int, body: bytes) -> EnqueueResult:
        """The script's answer; BrokerUnavailable past the Redis timeout, queue wait included."""
        loop = asyncio.get_running_loop()
        if self._timeout_s is not None and loop.time() < self._down_until:
            raise BrokerUnavailable("Redis failed moments ago; not trying again yet")
        future: asyncio.Future = loop.create_future()
        try:
            self._queue.put_nowait((idem_key(event_id).encode(), partition, body, future))
        except asyncio.QueueFull:
            raise BrokerUnavailable("too many requests waiting for Redis") from None
        try:
            async with asyncio.timeout(self._timeout_s):
                return await asyncio.shield(future)
        except TimeoutError:
            future.cancel()  # the flusher skips it; the event may still be enqueued (a retry resolves it)
            raise BrokerUnavailable(f"no answer from Redis within {self._timeout_s:g} s") from None

    async def _load_script(self) -> str:
        if self._sha is None:
            self._sha = await self._client.script_load(ENQUEUE_LUA)
        return self._sha

    async def _flush_loop(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < BATCH_MAX and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with asyncio.timeout(self._timeout_s):
                    replies = await self._send(batch)
            except (RedisError, OSError, TimeoutError) as exc:
                # Requests arriving in the next moment fail fast instead of queueing behind a dead broker.
                self._down_until = asyncio.get_running_loop().time() + FAIL_FAST_S
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(BrokerUnavailable(f"{type(exc).__name__}: {exc}"))
                continue
            for (*_, future), reply in zip(batch, replies):
                if future.done():
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(BrokerUnavailable(f"{type(reply).__name__}: {reply}"))
                else:
                    future.set_result(_result(reply))

    def _pack(self, sha: bytes, item: tuple) -> bytes:
        idem, partition, body, _ = item
        return b"".join(
            (
                self._header,
                _bulk(b"EVALSHA"),
                _bulk(sha),
                self._packed_numkeys,
                _bulk(idem),
                self._streams[partition],
                _bulk(body),
                self._middle,
                self._tails[partition],
            )
        )

    async def _send(self, batch: list, reload_left: int = 1) -> list:
        """One write with every script call, then one reply per call, on one pooled connection."""
        sha = (await self._load_script()).encode()
        payload = b"".join(self._pack(sha, item) for item in batch)
        pool = self._client.connection_pool
        conn = await pool.get_connection()
        replies: list = []
        clean = False
        try:
            await conn.send_packed_command(payload, check_health=False)
            for _ in batch:
                try:
                    replies.append(await conn.read_response())
                except ResponseError as exc:  # one call's error; the replies after it are still to read
                    replies.append(exc)
            clean = True
        finally:
            if not clean:  # cancelled or failed mid-read: unread replies would poison the next user
                await conn.disconnect(nowait=True)
            await pool.release(conn)
        if reload_left and any(isinstance(r, NoScriptError) for r in replies):
            self._sha = None  # Redis restarted and lost its script cache: load once more
            return await self._send(batch, reload_left - 1)
        return replies


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _result(reply: list) -> EnqueueResult:
    code = int(reply[0])
    value = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
    if code == 0:
        return EnqueueResult(Outcome.ACCEPTED, stream_id=value)
    if code == 1:
        return EnqueueResult(Outcome.DUPLICATE, stream_id=value)
    if code == 2:
        return EnqueueResult(Outcome.CONFLICT)
    return EnqueueResult(Outcome.BACKPRESSURE, backlog=int(value))
