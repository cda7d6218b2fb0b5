"""The search space of exploration: Hypothesis strategies within the bounds a scenario sets.

Why the bounds live in the scenario (`explore:` section): the person who knows
the system says which links may break and how hard; the search stays inside.
An example is plain data (a list of fault dicts in scenario-file form plus load
overrides), so the reproducer written at the end is exactly what was run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from harness.scenario.explore_bounds import ExploreSpec

__all__ = ["ExploreSpec", "Episode", "episodes"]


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
                st.sampled_from([link.value for link in spec.links]),
                st.sampled_from([toxic.value for toxic in spec.toxics]),
                start,
                duration,
                st.integers(10, spec.latency_ms_max),
            )
        )
        kinds.append(
            st.builds(
                lambda link, s, d: {"kind": "down", "link": link, "start_s": s, "duration_s": d},
                st.sampled_from([link.value for link in spec.links]),
                start,
                duration,
            )
        )
    if spec.process_actions and spec.process_targets:
        kinds.append(
            st.builds(
                lambda a, t, s, d: {"kind": "process", "action": a, "target": t, "start_s": s, "duration_s": d},
                st.sampled_from([action.value for action in spec.process_actions]),
                st.sampled_from([target.value for target in spec.process_targets]),
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
