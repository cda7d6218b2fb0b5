"""The bounds of `ledgerchaos explore`, as a scenario states them (its `explore:` section).

Why here and not in harness/explore: the bounds are part of what a scenario
file says, so loading one must not import Hypothesis and the search engine.
The explorer reads these values; the scenario package never imports it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from harness.faults.schedule import Link, ProcessAction, ProcessTarget, ToxicType

__all__ = ["ExploreSpec"]


def _members(enum_type: type[enum.Enum], values: Any, name: str) -> tuple[Any, ...]:
    """Enum members from members or their spellings; a wrong one names the field and the choices."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise ValueError(f'"{name}" must be a list, e.g. [{next(iter(enum_type)).value}], got {values!r}')
    members = []
    for value in values:
        try:
            members.append(enum_type(value))
        except ValueError:
            choices = ", ".join(m.value for m in enum_type)
            raise ValueError(f'"{name}": {value!r} is not one of {choices}') from None
    return tuple(members)


@dataclass(frozen=True)
class ExploreSpec:
    """Bounds of the search. Times are seconds of load; shares are per event."""

    links: tuple[Link, ...] = (Link.API_REDIS, Link.CONSUMER_REDIS, Link.CONSUMER_POSTGRES)
    toxics: tuple[ToxicType, ...] = (ToxicType.LATENCY, ToxicType.RESET_PEER, ToxicType.TIMEOUT)
    process_actions: tuple[ProcessAction, ...] = (ProcessAction.KILL, ProcessAction.PAUSE)
    process_targets: tuple[ProcessTarget, ...] = (ProcessTarget.ONE_CONSUMER,)
    faults_max: int = 3
    fault_duration_s_min: float = 0.5
    fault_duration_s_max: float = 4.0
    latency_ms_max: int = 300
    episode_load_s: float = 8.0
    base_rate_per_s: float = 100.0
    burst_multiplier_max: float = 8.0
    duplicate_share_max: float = 0.1
    hot_accounts_min: int = 20
    hot_accounts_max: int = 500

    def __post_init__(self) -> None:
        object.__setattr__(self, "links", _members(Link, self.links, "links"))
        object.__setattr__(self, "toxics", _members(ToxicType, self.toxics, "toxics"))
        object.__setattr__(self, "process_actions", _members(ProcessAction, self.process_actions, "process_actions"))
        object.__setattr__(self, "process_targets", _members(ProcessTarget, self.process_targets, "process_targets"))
        if not isinstance(self.faults_max, int) or not 0 <= self.faults_max <= 10:
            raise ValueError(f'"faults_max" must be a whole number in [0, 10], got {self.faults_max!r}')
        if not 0 < self.fault_duration_s_min <= self.fault_duration_s_max:
            raise ValueError('"fault_duration_s_min" must be > 0 and <= fault_duration_s_max')
        if not isinstance(self.latency_ms_max, int) or not 10 <= self.latency_ms_max <= 600_000:
            raise ValueError(f'"latency_ms_max" must be a whole number in [10, 600000], got {self.latency_ms_max!r}')
        if not 2.0 <= self.episode_load_s <= 600:
            raise ValueError(f'"episode_load_s" must be in [2, 600], got {self.episode_load_s!r}')
        if self.fault_duration_s_max >= self.episode_load_s - 2:
            raise ValueError('"fault_duration_s_max" must leave at least 2 s of the episode (episode_load_s) free')
        if not 1 <= self.base_rate_per_s <= 100_000:
            raise ValueError(f'"base_rate_per_s" must be in [1, 100000], got {self.base_rate_per_s!r}')
        if not 1 <= self.burst_multiplier_max <= 100:
            raise ValueError('"burst_multiplier_max" must be in [1, 100]')
        if not 0 <= self.duplicate_share_max <= 1:
            raise ValueError('"duplicate_share_max" must be in [0, 1]')
        if not 2 <= self.hot_accounts_min <= self.hot_accounts_max:
            raise ValueError('"hot_accounts_min" must be >= 2 and <= hot_accounts_max')
        if not (self.links and self.toxics) and not (self.process_actions and self.process_targets):
            raise ValueError("explore: allow at least one kind of fault (links with toxics, or process actions)")
