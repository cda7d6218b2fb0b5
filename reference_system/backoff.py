"""Exponential backoff with full jitter: the delay before retry n, from a seeded random source.

Why full jitter: consumers that failed together (a database blip) must not retry
together; drawing uniformly in [0, min(cap, base * 2**n)] spreads them out
(the AWS architecture blog's "full jitter"), and the cap bounds every wait.
"""

from __future__ import annotations

import random

__all__ = ["delay_s"]


def delay_s(attempt: int, base_ms: int, cap_ms: int, rng: random.Random) -> float:
    """Delay before retry number `attempt` (0-based), in seconds, never above cap_ms."""
    ceiling_ms = min(cap_ms, base_ms * (2 ** min(attempt, 30)))
    return rng.uniform(0, ceiling_ms) / 1000
