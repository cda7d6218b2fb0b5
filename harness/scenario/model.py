"""A scenario as frozen, typed values: what the rest of the harness receives instead of raw YAML.

Why frozen dataclasses of the domain's own types: the load, the faults and the
checkers validate their own values (one rule, one place); the scenario only
names them. Nothing downstream ever sees a dict from a file.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.faults.schedule import FaultSchedule
from harness.load.config import LoadModel, RetryPolicy
from harness.load.generator import GeneratorConfig
from harness.scenario.explore_bounds import ExploreSpec

if TYPE_CHECKING:  # the checkers package imports pandas; the loader imports it only when it builds one
    from harness.checkers.config import CheckConfig
    from harness.load.profile import LoadProfile

__all__ = ["Variant", "StackMode", "StackSpec", "SystemSpec", "LoadSpec", "PhaseSpec", "Scenario", "VARIANTS"]


class Variant(str, enum.Enum):
    """The reference system as built (CORRECT), or with one realistic defect (reference_system/settings.py).

    A str enum: it compares equal to its spelling in a file and on the command line. The same list
    as reference_system.settings.Variant (the harness starts the system as processes and does not
    import it); tests/unit/test_scenario_resolved.py keeps the two equal.
    """

    CORRECT = "correct"
    ACK_BEFORE_COMMIT = "ack_before_commit"
    NO_IDEMPOTENCY = "no_idempotency"
    NO_LEASE = "no_lease"
    NO_BACKPRESSURE = "no_backpressure"
    NO_TIMEOUTS = "no_timeouts"
    PROJECTION_OUTSIDE_TXN = "projection_outside_txn"


VARIANTS = tuple(v.value for v in Variant)


class StackMode(str, enum.Enum):
    """LOCAL: the harness starts Redis, PostgreSQL and Toxiproxy. ATTACH: they already run at given URLs."""

    LOCAL = "local"
    ATTACH = "attach"


@dataclass(frozen=True)
class StackSpec:
    mode: StackMode = StackMode.LOCAL
    redis_url: str | None = None
    postgres_url: str | None = None
    toxiproxy_url: str | None = None
    keep_dir: bool = False
    reset_state: bool = True  # attach mode: drop the reference system's tables and ledger:* keys first


@dataclass(frozen=True)
class SystemSpec:
    """How to start the reference system, the one system a run drives today.

    Driving a user's own service (`kind: external`, `api_url`, ...) is refused by the loader with
    exit 2 until it is built: accepting it and starting the reference system instead judged the
    wrong system and passed (a false green).
    """

    consumers: int = 2
    partitions: int = 4
    variant: Variant = Variant.CORRECT
    batch_size: int = 200
    high_water_mark: int = 20_000
    start_timeout_s: float = 30.0
    options: Mapping[str, str] = field(default_factory=dict)  # further `--flag value` pairs for the system


@dataclass(frozen=True)
class LoadSpec:
    """The load: a profile plus the client's settings (harness.load.config.LoadRunConfig fields)."""

    profile: LoadProfile
    generator: GeneratorConfig = GeneratorConfig()
    retry: RetryPolicy = RetryPolicy()
    model: LoadModel = LoadModel.OPEN
    users: int = 200
    workers: int = 1
    request_timeout_s: float = 2.0
    think_time_s: float = 1.0
    ops_max: int = 2_000_000


@dataclass(frozen=True)
class PhaseSpec:
    """The run's phases around the load. The load profile spans warm-up, baseline, faults and recovery:
    warmup_s is its first part (the breaker learns its baseline; not judged for recovery); the baseline
    runs from warmup_s to the first fault; recovery from the last fault's end to the load's end."""

    warmup_s: float = 2.0
    drain_s_max: float = 60.0
    sample_interval_s: float = 0.25


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    duration_s_max: float
    load: LoadSpec
    faults: FaultSchedule = FaultSchedule()
    stack: StackSpec = StackSpec()
    system: SystemSpec = SystemSpec()
    phases: PhaseSpec = PhaseSpec()
    invariants: CheckConfig | None = None  # None only when built in code; the loader always sets one
    explore: ExploreSpec | None = None  # bounds for `ledgerchaos explore`; None: the explorer's defaults
    description: str = ""
    source: Path | None = field(default=None, compare=False)  # the file it was read from; not part of the run
