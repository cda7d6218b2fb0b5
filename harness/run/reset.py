"""Reset the reference system's state on services that outlive a run (attach mode, the explorer).

Why drop rather than truncate: a variant may create the journal without its
unique constraint (`no_idempotency`), and the next run's variant must get the
schema it creates itself. Only the reference system's own tables and `ledger:*`
keys are touched; nothing else in the user's database or Redis.
"""

from __future__ import annotations

import asyncio

import asyncpg
import redis

from harness.errors import RunError

__all__ = ["reset_reference_state", "LEDGER_TABLES"]

LEDGER_TABLES = ("journal_lines", "balances", "partition_fence", "journal")
SCAN_BATCH = 1000
KEYS_MAX = 10_000_000


async def _drop_tables(postgres_url: str, timeout_s: float) -> None:
    conn = await asyncpg.connect(postgres_url, timeout=timeout_s)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {', '.join(LEDGER_TABLES)} CASCADE", timeout=timeout_s)
    finally:
        await conn.close(timeout=timeout_s)


def reset_reference_state(redis_url: str, postgres_url: str, timeout_s: float = 10.0) -> int:
    """Delete `ledger:*` keys and drop the ledger tables. Returns the number of keys deleted."""
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    deleted = 0
    try:
        batch = []
        for key in client.scan_iter(match="ledger:*", count=SCAN_BATCH):
            batch.append(key)
            if len(batch) >= SCAN_BATCH:
                deleted += client.delete(*batch)
                batch.clear()
            if deleted > KEYS_MAX:
                raise RunError(f"reset: more than {KEYS_MAX} ledger:* keys in Redis; is this the right server?")
        if batch:
            deleted += client.delete(*batch)
    except redis.RedisError as exc:
        raise RunError(f"reset: cannot clear ledger:* keys in Redis at {redis_url}: {exc}") from exc
    finally:
        client.close()
    try:
        asyncio.run(_drop_tables(postgres_url, timeout_s))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise RunError(f"reset: cannot drop the ledger tables in PostgreSQL: {exc}") from exc
    return deleted
