"""CheckConfig: every threshold the checkers use, as one frozen, validated value with a JSON form.

Why one value: a scenario's `invariants:` section maps onto it, a run stores
it as check_config.json next to its history, and `ledgerchaos check` re-judges
the stored run with the very thresholds it ran with.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["CheckConfig", "CHECKER_NAMES"]

# Every checker, in the order verdicts are reported (ledger first, then time and speed).
CHECKER_NAMES = (
    "no_double_posting",
    "no_lost_ack",
    "no_phantom",
    "ordering",
    "conservation",
    "replay_equals_projection",
    "dead_letters_accounted",
    "graceful_degradation",
    "backlog_bounded",
    "slo",
)

_NAME_SETS = ("enabled", "allow_unknown", "require")
_STRING_SETS = ("degradation_errors_allowed", "rejected_status_values")
_OPTIONAL_LIMITS = (
    "latency_ms_p50_max",
    "latency_ms_p95_max",
    "latency_ms_p99_max",
    "throughput_per_s_min",
    "backlog_events_max",
)
_LIMIT_S_MAX = 24 * 3600.0


@dataclass(frozen=True)
class CheckConfig:
    """What the checkers judge against. Every field has a default a fault-free run can use.

    enabled: checker names that run (default: all of CHECKER_NAMES).
    allow_unknown: checker names whose UNKNOWN verdict does not fail the gate.
    require: checker names that must judge: one that judged nothing (no bound set, nothing of its
        kind in the history) is UNKNOWN instead of NOT_JUDGED, so the gate fails on it.
    grace_s: seconds after a fault stops during which the API is still judged as inside the fault
        (connections re-open, consumers restart).
    api_latency_ms_max: inside a fault window and its grace, every client op must complete within this
        many milliseconds; a slower one, a timeout, or no answer at all is a hang.
    degradation_errors_allowed: transport error names (e.g. "connection_refused", "connection_reset")
        accepted inside fault windows; for faults that cut the client's own link, where no API can answer.
        Empty by default: only 429/503 with Retry-After count as failing explicitly.
    fault_windows_min: graceful_degradation is UNKNOWN when the history holds fewer fault windows than
        this (set it to the scenario's fault count, so a history that lost its nemesis ops cannot pass).
    recovery_share: after a fault, throughput of ok submits must reach this share of the baseline
        (open model: of the baseline's ok-per-offered ratio times the offered rate; see degradation.py).
    recovery_s_max: ... within this many seconds of the fault's stop.
    recovery_window_s: throughput is measured over a sliding window this long.
    latency_ms_p50_max / _p95_max / _p99_max: SLO bounds on the latency of ok submits; None = not judged.
    throughput_per_s_min: SLO bound on ok submits per second over the load span; None = not judged.
    backlog_events_max: bound on the sampled total backlog (events waiting or in flight); a system with
        backpressure stays near its high-water mark; None = not judged (the peak is still reported).
    rejected_status_values: status-op answers (GET /v1/events/{id}) that mean "rejected by a business
        rule", which accounts for an acknowledged event that is not in the journal.
    """

    enabled: frozenset = frozenset(CHECKER_NAMES)
    allow_unknown: frozenset = frozenset()
    require: frozenset = frozenset()
    grace_s: float = 5.0
    api_latency_ms_max: float = 2000.0
    degradation_errors_allowed: frozenset = frozenset()
    fault_windows_min: int = 0
    recovery_share: float = 0.8
    recovery_s_max: float = 30.0
    recovery_window_s: float = 2.0
    latency_ms_p50_max: float | None = None
    latency_ms_p95_max: float | None = None
    latency_ms_p99_max: float | None = None
    throughput_per_s_min: float | None = None
    backlog_events_max: float | None = None
    rejected_status_values: frozenset = frozenset({"rejected"})

    def __post_init__(self) -> None:
        for name in _NAME_SETS + _STRING_SETS:
            value = getattr(self, name)
            if isinstance(value, str) or not _iterable(value):
                raise ValueError(f'"{name}" must be a list of names, got {value!r}')
            value = frozenset(value)
            for item in value:
                if not isinstance(item, str):
                    raise ValueError(f'"{name}": {item!r} is not a name (text)')
            object.__setattr__(self, name, value)
        for name in _NAME_SETS:
            for item in sorted(getattr(self, name)):
                if item not in CHECKER_NAMES:
                    raise ValueError(
                        f'"{name}": {item!r} is not a checker{_did_you_mean(item, CHECKER_NAMES)}; '
                        f"use some of {', '.join(CHECKER_NAMES)}"
                    )
        for item in sorted(self.require - self.enabled):
            raise ValueError(f'"require": {item!r} is not enabled; enable it or do not require it')
        for item in sorted(self.require & self.allow_unknown):
            raise ValueError(f'"require": {item!r} is also in allow_unknown; a required checker must judge')
        _number(self, "grace_s", 0.0, _LIMIT_S_MAX)
        _number(self, "api_latency_ms_max", 0.0, _LIMIT_S_MAX * 1000, low_open=True)
        _number(self, "recovery_share", 0.0, 10.0, low_open=True)
        _number(self, "recovery_s_max", 0.0, _LIMIT_S_MAX)
        _number(self, "recovery_window_s", 0.0, 3600.0, low_open=True)
        if (
            not isinstance(self.fault_windows_min, int)
            or isinstance(self.fault_windows_min, bool)
            or not 0 <= self.fault_windows_min <= 10_000
        ):
            raise ValueError(
                f'"fault_windows_min" must be a whole number in [0, 10000], got {self.fault_windows_min!r}'
            )
        for name in _OPTIONAL_LIMITS:
            if getattr(self, name) is not None:
                _number(self, name, 0.0, 1e12, low_open=True)

    # -- JSON ----------------------------------------------------------------------------

    def to_json(self) -> dict:
        """A JSON-ready dict; sets become sorted lists."""
        out: dict = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = sorted(value) if isinstance(value, frozenset) else value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckConfig:
        """The inverse of to_json; same checks as from_mapping."""
        return cls.from_mapping(data, where="check_config")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "invariants") -> CheckConfig:
        """Build from a scenario's `invariants:` section or a check_config.json object.

        Unknown keys are refused with a suggestion; ValueError messages start with `where.field`.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: must be a mapping of settings, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        for key in data:
            if key not in names:
                raise ValueError(
                    f"{where}.{key}: not a checker setting{_did_you_mean(str(key), names)}; "
                    f"use one of {', '.join(names)}"
                )
        try:
            return cls(**dict(data))
        except ValueError as exc:
            message = str(exc)
            if message.startswith('"'):
                field_name, _, rest = message[1:].partition('"')
                raise ValueError(f"{where}.{field_name}: {rest.lstrip(': ')}") from None
            raise ValueError(f"{where}: {message}") from None


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _number(config: CheckConfig, name: str, low: float, high: float, low_open: bool = False) -> None:
    value = getattr(config, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        raise ValueError(f'"{name}" must be a number {bound} and <= {high:g}, got {value!r}')


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""
