"""The search space of exploration: bounds a scenario sets, and Hypothesis strategies within them.

Why the bounds live in the scenario (`explore:` section): the person who knows
the system says which links may break and how hard; the search stays inside.
An example is plain data (a list of fault dicts in scenario-file form plus load
overrides), so the reproducer written at the end is exactly what was run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

__all__ = ["ExploreSpec", "Episode", "episodes"]

_LINKS = ("client_api", "api_redis", "consumer_redis", "consumer_postgres")
_TOXICS = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data")
_ACTIONS = ("kill", "pause", "restart")
_TARGETS = ("one_consumer", "all_consumers", "api")


@dataclass(frozen=True)
class ExploreSpec:
    """Bounds of the search. Times are seconds of load; shares are per event."""

    links: tuple[str, ...] = ("api_redis", "consumer_redis", "consumer_postgres")
    toxics: tuple[str, ...] = ("latency", "reset_peer", "timeout")
    process_actions: tuple[str, ...] = ("kill", "pause")
    process_targets: tuple[str, ...] = ("one_consumer",)
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
        for name, allowed in (
            ("links", _LINKS),
            ("toxics", _TOXICS),
            ("process_actions", _ACTIONS),
            ("process_targets", _TARGETS),
        ):
            values = tuple(getattr(self, name))
            object.__setattr__(self, name, values)
            for value in values:
                if value not in allowed:
                    raise ValueError(f'"{name}": {value!r} is not one of {", ".join(allowed)}')
        if not isinstance(self.faults_max, int) or not 0 <= self.faults_max <= 10:
            raise ValueError(f'"faults_max" must be a whole number in [0, 10], got {self.faults_max!r}')
        if not 0 < self.fault_duration_s_min <= self.fault_duration_s_max:
            raise ValueError('"fault_duration_s_min" must be > 0 and <= fault_duration_s_max')
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


@dataclass(frozen=True)
class Episode:
    """One example: faults in scenario-file form, and the load's shape."""

    faults: tuple[dict[str, Any], ...] = ()
    burst_multiplier: float = 1.0
    duplicate_share: float = 0.0
    accounts: int = 200
    seed: int = 0

    def fault_count(self) -> int:
        return len(self.faults)

    def describe(self) -> str:
        parts = [_describe_fault(f) for f in self.faults] or ["no faults"]
        return (
            f"{'; '.join(parts)} | burst x{self.burst_multiplier:g}, duplicates {self.duplicate_share:.0%}, "
            f"{self.accounts} accounts, seed {self.seed}"
        )


def _describe_fault(fault: dict[str, Any]) -> str:
    when = f"@{fault['start_s']:g}s+{fault['duration_s']:g}s"
    if fault["kind"] == "toxic":
        return f"{fault['toxic']} on {fault['link']} {when}"
    if fault["kind"] == "down":
        return f"down {fault['link']} {when}"
    return f"{fault['action']} {fault['target']} {when}"


def _round(value: float) -> float:
    """Faults at tenths of a second: readable reproducers, and a smaller space to shrink in."""
    return round(value, 1)


def _fault(spec: ExploreSpec, warmup_s: float) -> st.SearchStrategy:
    kinds: list[st.SearchStrategy] = []
    duration = st.floats(spec.fault_duration_s_min, spec.fault_duration_s_max).map(_round)
    latest_start_s = spec.episode_load_s - spec.fault_duration_s_max - 1.0
    start = st.floats(warmup_s + 0.5, max(warmup_s + 0.5, latest_start_s)).map(_round)
    if spec.links and spec.toxics:

        def toxic(draw_link, draw_toxic, s, d, latency):
            attributes = {"latency": latency} if draw_toxic == "latency" else {}
            if draw_toxic == "timeout":
                attributes = {"timeout": 0}
            return {
                "kind": "toxic",
                "link": draw_link,
                "toxic": draw_toxic,
                "attributes": attributes,
                "start_s": s,
                "duration_s": d,
            }

        kinds.append(
            st.builds(
                toxic,
                st.sampled_from(spec.links),
                st.sampled_from(spec.toxics),
                start,
                duration,
                st.integers(10, spec.latency_ms_max),
            )
        )
        kinds.append(
            st.builds(
                lambda link, s, d: {"kind": "down", "link": link, "start_s": s, "duration_s": d},
                st.sampled_from(spec.links),
                start,
                duration,
            )
        )
    if spec.process_actions and spec.process_targets:
        kinds.append(
            st.builds(
                lambda a, t, s, d: {"kind": "process", "action": a, "target": t, "start_s": s, "duration_s": d},
                st.sampled_from(spec.process_actions),
                st.sampled_from(spec.process_targets),
                start,
                duration,
            )
        )
    return st.one_of(*kinds)


def episodes(spec: ExploreSpec, warmup_s: float = 1.0) -> st.SearchStrategy:
    """Examples that shrink toward fewer faults, no bursts, no duplicates, and the same seed."""
    return st.builds(
        lambda faults, burst, dup, accounts, seed: Episode(tuple(faults), burst, dup, accounts, seed),
        st.lists(_fault(spec, warmup_s), min_size=0, max_size=spec.faults_max),
        st.floats(1.0, spec.burst_multiplier_max).map(_round),
        st.floats(0.0, spec.duplicate_share_max).map(lambda x: round(x, 3)),
        st.integers(spec.hot_accounts_min, spec.hot_accounts_max),
        st.integers(0, 2**16),
    )
