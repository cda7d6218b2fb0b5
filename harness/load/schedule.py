"""The open-model schedule: arrival k, its intended time, its posting, and which worker sends it.

Why pure and shared: every worker of a distributed run walks the same seeded
schedule and keeps arrival k when k mod workers == its index, so N workers send
exactly the arrivals one process would have sent; tests rebuild the same
schedule to compare what was sent against what was meant. Arrival times and
postings use two independent random streams derived from the run's seed, so a
change of generator settings does not move the arrivals (and vice versa).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import NamedTuple

from harness.load.generator import GeneratorConfig, Posting, generate_postings
from harness.load.profile import arrival_times

__all__ = ["Arrival", "arrival_rng", "posting_rng", "closed_posting_rng", "open_schedule"]


class Arrival(NamedTuple):
    """One scheduled request: its position k in the whole run, when (seconds since t0), what."""

    k: int
    intended_time_s: float
    posting: Posting


def arrival_rng(seed: int) -> random.Random:
    """The stream arrival_times draws from (string seeds hash the same in every process)."""
    return random.Random(f"ledgerchaos:{seed}:arrivals")


def posting_rng(seed: int) -> random.Random:
    return random.Random(f"ledgerchaos:{seed}:postings")


def closed_posting_rng(seed: int, worker_index: int) -> random.Random:
    """Closed-model workers do not share a schedule, so each draws its own stream."""
    return random.Random(f"ledgerchaos:{seed}:closed:{worker_index}")


def open_schedule(
    profile,
    generator: GeneratorConfig,
    seed: int,
    start_offset_s: float = 0.0,
    worker_index: int = 0,
    workers: int = 1,
) -> Iterator[Arrival]:
    """Yield this worker's arrivals in time order; intended_time_s = start_offset_s + the profile's time."""
    if not 0 <= worker_index < workers:
        raise ValueError(f'"worker_index" must be in [0, {workers}), got {worker_index}')
    postings = generate_postings(generator, posting_rng(seed))
    for k, (at_s, posting) in enumerate(zip(arrival_times(profile, arrival_rng(seed)), postings)):
        if k % workers == worker_index:
            yield Arrival(k, start_offset_s + at_s, posting)
