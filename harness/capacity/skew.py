"""Partition shares of the load: the posting generator's hot-key law through the reference system's partition function.

Why: the live load draws each posting's ordering key (its debit account) from a
Zipf-like law, so a few keys carry most of the load, and the reference system
sends a key to partition crc32(key) % partitions. With per-partition workers,
the partition holding the hottest key is the first to saturate; a uniform
spread would predict too rosy a p99. The shares are computed exactly from the
generator's settings, not sampled.
"""

from __future__ import annotations

import zlib

from harness.load.generator import GeneratorConfig, account_name

__all__ = ["partition_of", "partition_weights"]


def partition_of(key: str, partitions: int) -> int:
    """The reference system's partition function (reference_system/keys.py): crc32 of the UTF-8 key."""
    return zlib.crc32(key.encode("utf-8")) % partitions


def partition_weights(generator: GeneratorConfig, partitions: int) -> tuple:
    """Each partition's share of new postings (sums to 1) under the generator's accounts and zipf_exponent."""
    if not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f'"partitions" must be a whole number >= 1, got {partitions!r}')
    shares = [0.0] * partitions
    for rank in range(1, generator.accounts + 1):
        shares[partition_of(account_name(rank), partitions)] += 1.0 / rank**generator.zipf_exponent
    total = sum(shares)
    return tuple(s / total for s in shares)
