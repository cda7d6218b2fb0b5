"""Redis key names and the stable partition function, shared by the API and consumers.

Why one module: the harness reads these keys directly (XINFO GROUPS on
`ledger:p:<n>`, XRANGE on `ledger:dlq`), so their spelling is a contract.
"""

from __future__ import annotations

import zlib

__all__ = [
    "GROUP",
    "DLQ_STREAM",
    "partition_of",
    "stream_key",
    "idem_key",
    "lease_key",
    "lease_epoch_key",
    "flow_name",
    "BREAKER_HASH",
    "CONSUMERS_ZSET",
    "consumer_gauge_key",
    "consumer_counter_key",
    "baseline_key",
]

GROUP = "ledger"
DLQ_STREAM = "ledger:dlq"
BREAKER_HASH = "ledger:breaker"
CONSUMERS_ZSET = "ledger:consumers"


def partition_of(key: str, partitions: int) -> int:
    """Stable across processes and runs (crc32), unlike Python's salted hash()."""
    return zlib.crc32(key.encode("utf-8")) % partitions


def stream_key(partition: int) -> str:
    return f"ledger:p:{partition}"


def idem_key(event_id: str) -> str:
    return f"ledger:idem:{event_id}"


def lease_key(partition: int) -> str:
    return f"ledger:lease:{partition}"


def lease_epoch_key(partition: int) -> str:
    return f"ledger:lease-epoch:{partition}"


def flow_name(partition: int) -> str:
    """A breaker flow is one partition: halting it stops only the keys hashed there."""
    return f"p{partition}"


def consumer_gauge_key(name: str) -> str:
    return f"ledger:consumer:{name}"


def consumer_counter_key(name: str) -> str:
    return f"ledger:metrics:{name}"


def baseline_key(flow: str) -> str:
    return f"ledger:baseline:{flow}"
