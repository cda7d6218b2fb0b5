"""Partition leases in Redis: one owner per partition at a time, expiring when the owner dies.

Why an epoch: a lease alone cannot stop an owner that was paused (SIGSTOP, a
long GC) and wakes after its lease expired; the epoch, incremented on every
acquisition, is the fencing token the ledger checks in the same transaction as
the batch (see ledger.partition_fence), so the stale owner's commit is refused.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from reference_system.keys import lease_epoch_key, lease_key

__all__ = ["acquire", "renew", "release", "owner_of"]

_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. epoch, 'PX', ARGV[2])
return epoch
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


async def acquire(client: aioredis.Redis, partition: int, owner: str, lease_ms: int) -> int | None:
    """The new epoch if the partition was free and is now ours, else None."""
    epoch = int(await client.eval(_ACQUIRE, 2, lease_key(partition), lease_epoch_key(partition), owner, lease_ms))
    return epoch or None


async def renew(client: aioredis.Redis, partition: int, owner: str, epoch: int, lease_ms: int) -> bool:
    """Extend our lease; False when it expired or someone else holds it now."""
    return bool(await client.eval(_RENEW, 1, lease_key(partition), f"{owner}|{epoch}", lease_ms))


async def release(client: aioredis.Redis, partition: int, owner: str, epoch: int) -> None:
    """Give the partition up at once (clean stop, rebalancing) instead of waiting for expiry."""
    await client.eval(_RELEASE, 1, lease_key(partition), f"{owner}|{epoch}")


async def owner_of(client: aioredis.Redis, partition: int) -> str | None:
    value = await client.get(lease_key(partition))
    return value.decode().rsplit("|", 1)[0] if value else None
