"""The run's clock: seconds since t0 on CLOCK_MONOTONIC, shared with the Locust children.

Why monotonic and not wall time: a wall-clock step (NTP) in the middle of a run
would reorder the history. CLOCK_MONOTONIC is one clock for every process on
the machine, so the children stamp their ops on the same axis as the nemesis.
The wall time at t0 is kept only to place database timestamps on this axis.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

__all__ = ["RunClock"]


@dataclass(frozen=True)
class RunClock:
    t0_monotonic: float = field(default_factory=time.monotonic)
    t0_wall_s: float = field(default_factory=time.time)

    def now_s(self) -> float:
        return time.monotonic() - self.t0_monotonic

    def wait_until_s(self, t_s: float, stop: threading.Event) -> bool:
        """Sleep until run time t_s; True (at once) when stop is set first."""
        while True:
            left_s = t_s - self.now_s()
            if left_s <= 0:
                return stop.is_set()
            if stop.wait(min(left_s, 0.5)):
                return True
