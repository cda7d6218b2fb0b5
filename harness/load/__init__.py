"""Load: arrival-rate profiles (pure) and the Locust driver (own process).

Only `harness.load.locust_process` imports Locust, and only inside the child
process it runs in: Locust's gevent patching breaks other imports.
"""

from harness.load.profile import (
    AnyProfile,
    LoadProfile,
    MicroBurst,
    Ramp,
    Sequence,
    Spike,
    Steady,
    Surge,
    arrival_times,
    expected_arrivals,
)

__all__ = [
    "AnyProfile",
    "LoadProfile",
    "MicroBurst",
    "Ramp",
    "Sequence",
    "Spike",
    "Steady",
    "Surge",
    "arrival_times",
    "expected_arrivals",
]
