"""Fault schedules: timed network and process faults, as frozen values.

Why a value and not code: the same schedule drives Toxiproxy in a live run,
becomes outage or slow-down windows in the SimPy model, is generated and shrunk
by the explorer, and is written back as a reproducer scenario. Nothing here
talks to Toxiproxy or to a process.

Times are seconds from the start of the load phase.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "Link",
    "ToxicType",
    "Direction",
    "ProcessAction",
    "ProcessTarget",
    "ToxicFault",
    "LinkDown",
    "ProcessFault",
    "Fault",
    "FaultSchedule",
    "TOXIC_ATTRIBUTES",
]


class Link(enum.Enum):
    """A network link of the system under test; each runs through its own Toxiproxy proxy."""

    CLIENT_API = "client_api"
    API_REDIS = "api_redis"
    CONSUMER_REDIS = "consumer_redis"
    CONSUMER_POSTGRES = "consumer_postgres"


class ToxicType(enum.Enum):
    """Toxiproxy's toxic types (https://github.com/Shopify/toxiproxy#toxics)."""

    LATENCY = "latency"
    BANDWIDTH = "bandwidth"
    SLOW_CLOSE = "slow_close"
    TIMEOUT = "timeout"
    RESET_PEER = "reset_peer"
    SLICER = "slicer"
    LIMIT_DATA = "limit_data"


# The attributes each toxic takes, with Toxiproxy's defaults. A scenario may set
# only these; anything else is a typo the user wants to hear about.
TOXIC_ATTRIBUTES: Mapping[ToxicType, Mapping[str, int]] = {
    ToxicType.LATENCY: {"latency": 0, "jitter": 0},
    ToxicType.BANDWIDTH: {"rate": 0},
    ToxicType.SLOW_CLOSE: {"delay": 0},
    ToxicType.TIMEOUT: {"timeout": 0},
    ToxicType.RESET_PEER: {"timeout": 0},
    ToxicType.SLICER: {"average_size": 0, "size_variation": 0, "delay": 0},
    ToxicType.LIMIT_DATA: {"bytes": 0},
}


class Direction(enum.Enum):
    """Which way a toxic acts: upstream is client → server, downstream server → client."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


class ProcessAction(enum.Enum):
    """What a process fault does: kill -9 (then restart at the end of the window),
    pause with SIGSTOP (resume with SIGCONT), or a clean restart (SIGTERM, start)."""

    KILL = "kill"
    PAUSE = "pause"
    RESTART = "restart"


class ProcessTarget(enum.Enum):
    """Which processes a process fault hits."""

    ONE_CONSUMER = "one_consumer"
    ALL_CONSUMERS = "all_consumers"
    API = "api"


def _check_window(start_s: float, duration_s: float) -> None:
    if start_s < 0:
        raise ValueError(f'"start_s" must be >= 0, got {start_s}')
    if duration_s <= 0:
        raise ValueError(f'"duration_s" must be > 0, got {duration_s}')


@dataclass(frozen=True)
class ToxicFault:
    """A Toxiproxy toxic on one link for one window."""

    link: Link
    toxic: ToxicType
    start_s: float
    duration_s: float
    direction: Direction = Direction.DOWNSTREAM
    toxicity: float = 1.0
    attributes: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_window(self.start_s, self.duration_s)
        if not 0.0 <= self.toxicity <= 1.0:
            raise ValueError(f'"toxicity" must be within [0, 1], got {self.toxicity}')
        allowed = TOXIC_ATTRIBUTES[self.toxic]
        for name, value in self.attributes.items():
            if name not in allowed:
                raise ValueError(
                    f'"{name}" is not an attribute of a {self.toxic.value} toxic; use one of {sorted(allowed)}'
                )
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f'"{name}" must be a whole number >= 0, got {value!r}')
        # Freeze the mapping so that the schedule really is a value.
        object.__setattr__(self, "attributes", dict(sorted(self.attributes.items())))

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def describe(self) -> str:
        attrs = ",".join(f"{k}={v}" for k, v in self.attributes.items())
        return f"{self.toxic.value}({attrs}) {self.direction.value} on {self.link.value} toxicity={self.toxicity:g}"


@dataclass(frozen=True)
class LinkDown:
    """A link disabled outright (Toxiproxy proxy disabled: connections refused)."""

    link: Link
    start_s: float
    duration_s: float

    def __post_init__(self) -> None:
        _check_window(self.start_s, self.duration_s)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def describe(self) -> str:
        return f"down on {self.link.value}"


@dataclass(frozen=True)
class ProcessFault:
    """kill / pause / restart of reference-system processes for one window.

    For KILL the victims are restarted at the end of the window; for PAUSE they
    are resumed; for RESTART the window is the time they stay stopped.
    """

    action: ProcessAction
    target: ProcessTarget
    start_s: float
    duration_s: float

    def __post_init__(self) -> None:
        _check_window(self.start_s, self.duration_s)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def describe(self) -> str:
        return f"{self.action.value} {self.target.value}"


Fault = ToxicFault | LinkDown | ProcessFault


@dataclass(frozen=True)
class FaultSchedule:
    """Faults in start order. An empty schedule is a valid fault-free run."""

    faults: tuple = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "faults", tuple(sorted(self.faults, key=lambda f: (f.start_s, f.describe()))))

    def __len__(self) -> int:
        return len(self.faults)

    def __iter__(self):
        return iter(self.faults)

    @property
    def end_s(self) -> float:
        """When the last fault ends (0 for an empty schedule)."""
        return max((f.end_s for f in self.faults), default=0.0)

    def active_at(self, t_s: float) -> tuple:
        """The faults whose window contains t_s."""
        return tuple(f for f in self.faults if f.start_s <= t_s < f.end_s)
