"""What a load run is asked to do: frozen, validated settings, and their JSON form for the Locust child.

Why a separate module: the driver (in the harness process) builds a
`LoadRunConfig`, the child process (which imports Locust) reads the same object
back from JSON; neither may import the other. Everything here is plain data.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.load.codec import profile_from_dict, profile_to_dict
from harness.load.generator import GeneratorConfig

__all__ = ["LoadModel", "RetryPolicy", "LoadRunConfig", "WORKERS_MAX", "USERS_MAX", "OPS_MAX", "OP_ID_STRIDE"]

WORKERS_MAX = 64  # one worker per core is the useful most; 64 is far above any machine this runs on
USERS_MAX = 20_000  # greenlets per process; above this a process spends its time scheduling, not sending
OPS_MAX = 50_000_000  # about 10 GB of JSON lines: a typo, not a plan
OP_ID_STRIDE = 10**12  # op_id = worker_index * stride + counter: unique across workers, worker readable


class LoadModel(str, enum.Enum):
    """OPEN: arrivals at the profile's times whatever the responses (the default, and the honest one
    for an API facing many independent clients). CLOSED: N users, each sending, waiting for the
    answer, thinking, sending again (a fixed client population; the rate falls when the system slows)."""

    OPEN = "open"
    CLOSED = "closed"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class RetryPolicy:
    """Client retries on 429/503, honouring Retry-After; and resolution of indeterminate outcomes.

    Every loop is bounded: attempts_max tries in all (1 = no retry); the waits of one
    event sum to at most wait_s_max (a Retry-After that would pass it ends the retries);
    one wait is at most retry_after_s_cap whatever the server says. Without a Retry-After
    header the wait is backoff_s × 2**(attempt-1). After an indeterminate outcome
    (timeout, reset, 5xx) the client asks GET /v1/events/{id} up to resolve_attempts_max
    times, resolve_delay_s apart, until it gets a definite answer.
    """

    attempts_max: int = 4
    wait_s_max: float = 30.0
    retry_after_s_cap: float = 10.0
    backoff_s: float = 0.5
    retry_statuses: tuple = (429, 503)
    resolve_attempts_max: int = 3
    resolve_delay_s: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "retry_statuses", tuple(self.retry_statuses))
        _require(
            isinstance(self.attempts_max, int) and 1 <= self.attempts_max <= 100,
            f"retry.attempts_max: must be a whole number in [1, 100], got {self.attempts_max!r}",
        )
        for name in ("wait_s_max", "retry_after_s_cap", "backoff_s", "resolve_delay_s"):
            value = getattr(self, name)
            _require(
                _finite(value) and 0 <= value <= 3600, f"retry.{name}: must be a number in [0, 3600], got {value!r}"
            )
        _require(
            isinstance(self.resolve_attempts_max, int) and 0 <= self.resolve_attempts_max <= 100,
            f"retry.resolve_attempts_max: must be a whole number in [0, 100], got {self.resolve_attempts_max!r}",
        )
        for status in self.retry_statuses:
            _require(
                isinstance(status, int) and 400 <= status <= 599,
                f"retry.retry_statuses: {status!r} is not an HTTP error status (400..599)",
            )


@dataclass(frozen=True)
class LoadRunConfig:
    """One load run. Times are seconds on CLOCK_MONOTONIC: load time 0 is t0_monotonic + start_offset_s,
    and every recorded time_s is seconds since t0_monotonic (the run's t0, shared with the fault
    schedule and the metrics scraper).

    start_offset_s must cover the child's start-up (about 1 s for a local runner, 2-3 s for a
    distributed one) or the first arrivals go out late (visible as intended vs actual send time).
    """

    api_url: str
    profile: Any  # an AnyProfile (harness.load.profile)
    t0_monotonic: float
    ops_dir: Path
    seed: int = 0
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    start_offset_s: float = 2.0
    request_timeout_s: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    workers: int = 1  # 1: one local Locust runner; >1: Locust master + this many worker processes
    model: LoadModel = LoadModel.OPEN
    users: int = 200  # open: the pool of users per worker; closed: users per worker
    think_time_s: float = 1.0  # closed model: pause between an answer and the next request
    ops_max: int = 5_000_000  # per worker; the load stops (recorded in the outcome) when reached
    duration_s_max: float | None = None  # None: profile + start offset + drain allowance
    record: bool = True  # False only for the benchmark: measures what recording costs

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops_dir", Path(self.ops_dir))
        object.__setattr__(self, "model", LoadModel(self.model))
        parts = urlsplit(self.api_url)
        _require(
            parts.scheme in ("http", "https") and bool(parts.hostname),
            f"api_url: {self.api_url!r} is not an http(s) URL; use e.g. http://127.0.0.1:8000",
        )
        _require(
            _finite(getattr(self.profile, "duration_s", None)) and hasattr(self.profile, "rate_per_s"),
            f"profile: {self.profile!r} is not a load profile (harness.load.profile)",
        )
        _require(
            _finite(self.t0_monotonic), f"t0_monotonic: must be a number (time.monotonic()), got {self.t0_monotonic!r}"
        )
        _require(isinstance(self.seed, int), f"seed: must be a whole number, got {self.seed!r}")
        _require(isinstance(self.generator, GeneratorConfig), "generator: must be a GeneratorConfig")
        _require(isinstance(self.retry, RetryPolicy), "retry: must be a RetryPolicy")
        _require(
            _finite(self.start_offset_s) and self.start_offset_s >= 0,
            f"start_offset_s: must be >= 0, got {self.start_offset_s!r}",
        )
        _require(
            _finite(self.request_timeout_s) and 0 < self.request_timeout_s <= 600,
            f"request_timeout_s: must be in (0, 600], got {self.request_timeout_s!r}",
        )
        _require(
            isinstance(self.workers, int) and 1 <= self.workers <= WORKERS_MAX,
            f"workers: must be a whole number in [1, {WORKERS_MAX}], got {self.workers!r}",
        )
        _require(
            isinstance(self.users, int) and 1 <= self.users <= USERS_MAX,
            f"users: must be a whole number in [1, {USERS_MAX}], got {self.users!r}",
        )
        _require(
            _finite(self.think_time_s) and 0 <= self.think_time_s <= 3600,
            f"think_time_s: must be in [0, 3600], got {self.think_time_s!r}",
        )
        _require(
            isinstance(self.ops_max, int) and 2 <= self.ops_max <= OPS_MAX,
            f"ops_max: must be a whole number in [2, {OPS_MAX}], got {self.ops_max!r}",
        )
        _require(
            self.duration_s_max is None or (_finite(self.duration_s_max) and self.duration_s_max > 0),
            f"duration_s_max: must be > 0 or None, got {self.duration_s_max!r}",
        )

    @property
    def drain_s_max(self) -> float:
        """The longest the last event can take after its arrival: every attempt timing out,
        every allowed wait, then every status read timing out."""
        r = self.retry
        return (
            r.attempts_max * self.request_timeout_s
            + r.wait_s_max
            + r.resolve_attempts_max * (self.request_timeout_s + r.resolve_delay_s)
        )

    @property
    def run_s_max(self) -> float:
        """How long the child may run, counted from t0: the explicit bound, else start offset +
        profile + drain allowance + 10 s for start-up and shutdown."""
        if self.duration_s_max is not None:
            return self.duration_s_max
        return self.start_offset_s + float(self.profile.duration_s) + self.drain_s_max + 10.0

    def to_json(self) -> dict:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "profile":
                value = profile_to_dict(value)
            elif f.name == "generator":
                value = value.to_dict()
            elif f.name == "retry":
                value = {
                    g.name: (list(v) if isinstance(v := getattr(value, g.name), tuple) else v) for g in fields(value)
                }
            elif f.name == "ops_dir":
                value = str(value)
            elif f.name == "model":
                value = value.value
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoadRunConfig:
        data = dict(data)
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        _require(not unknown, f"{unknown[0] if unknown else ''}: not a load setting")
        data["profile"] = profile_from_dict(data["profile"])
        data["generator"] = GeneratorConfig.from_dict(data.get("generator", {}))
        retry = data.get("retry", {})
        try:
            data["retry"] = RetryPolicy(**retry)
        except TypeError as exc:
            raise ValueError(f"retry: {exc}") from None
        return cls(**data)
