"""Map a FaultSchedule onto the model's windows: outages, slow-downs, consumer stops.

Why a table of windows rather than faults inside the model: the mapping is the
modelling decision a reader must be able to check (docs/capacity.md, "Fault
mapping"), and the model then asks only "what holds at time t". Pure values.

| fault | model effect |
| --- | --- |
| client_api / api_redis down, reset_peer, timeout; api process kill/pause/restart | ingest unavailable: arrivals answered 503 / refused (counted `unavailable`), with probability = toxicity |
| client_api / api_redis latency | enqueue delayed by toxicity × latency (any direction: conservative for downstream) |
| consumer_postgres / consumer_redis down | batch attempts fail after refused_s; waited out with capped backoff (no dead letters unless retry.bounded_on_outage) |
| consumer_postgres / consumer_redis reset_peer | attempts fail after the toxic's timeout (ms) |
| consumer_postgres / consumer_redis timeout | attempts hang min(timeout, call_timeout_s), then fail |
| consumer_postgres latency | batch time + round_trips × toxicity × latency |
| consumer_redis latency | batch time + round_trips × toxicity × latency |
| all_consumers kill/pause | no consumer runs; in-flight batches are lost and redone |
| one_consumer kill/pause | consumer 0 stops; its partitions wait lease_expiry_s, then move to the others |
| any restart | like kill, but graceful: in-flight batch finishes, leases are released at once |
| bandwidth, slow_close, slicer, limit_data | not modelled: listed in `unmapped` |
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.capacity.config import ModelConfig
from harness.faults.schedule import (
    FaultSchedule,
    Link,
    LinkDown,
    ProcessAction,
    ProcessFault,
    ProcessTarget,
    ToxicFault,
    ToxicType,
)

__all__ = ["Outage", "Delay", "ConsumerStop", "FaultWindows", "map_faults"]


@dataclass(frozen=True)
class Outage:
    """Within [start_s, end_s) an operation fails with `probability`, `fail_after_s` after it starts."""

    start_s: float
    end_s: float
    probability: float
    fail_after_s: float


@dataclass(frozen=True)
class Delay:
    """Within [start_s, end_s) an operation takes delay_s longer."""

    start_s: float
    end_s: float
    delay_s: float


@dataclass(frozen=True)
class ConsumerStop:
    """Consumers stopped within [start_s, end_s): all of them, or consumer 0 only.

    graceful: the in-flight batch completes and leases are released at once
    (restart, SIGTERM); otherwise the batch is lost and leases expire (kill, pause).
    """

    start_s: float
    end_s: float
    all_consumers: bool
    graceful: bool


@dataclass(frozen=True)
class FaultWindows:
    """The model's view of a fault schedule."""

    ingest_outages: tuple = ()
    ingest_delays: tuple = ()
    batch_outages: tuple = ()
    batch_delays: tuple = ()
    consumer_stops: tuple = ()
    unmapped: tuple = ()  # descriptions of faults the model does not represent

    @property
    def empty(self) -> bool:
        return not (
            self.ingest_outages or self.ingest_delays or self.batch_outages or self.batch_delays or self.consumer_stops
        )


_INGEST_LINKS = (Link.CLIENT_API, Link.API_REDIS)
_CONSUMER_LINKS = (Link.CONSUMER_POSTGRES, Link.CONSUMER_REDIS)


def _fail_after_s(fault: ToxicFault, config: ModelConfig) -> float | None:
    if fault.toxic is ToxicType.RESET_PEER:
        return fault.attributes.get("timeout", 0) / 1000.0
    if fault.toxic is ToxicType.TIMEOUT:
        timeout_ms = fault.attributes.get("timeout", 0)
        # Toxiproxy's timeout 0 holds the connection forever: the caller's own timeout ends it.
        return config.call_timeout_s if timeout_ms == 0 else min(timeout_ms / 1000.0, config.call_timeout_s)
    return None


def map_faults(schedule: FaultSchedule | None, config: ModelConfig) -> FaultWindows:
    """Turn each fault into the window(s) of its model effect (see the module table)."""
    if schedule is None:
        return FaultWindows()
    ingest_outages, ingest_delays, batch_outages, batch_delays, stops, unmapped = [], [], [], [], [], []
    for fault in schedule:
        start_s, end_s = fault.start_s, fault.end_s
        if isinstance(fault, LinkDown):
            if fault.link in _INGEST_LINKS:
                ingest_outages.append(Outage(start_s, end_s, 1.0, 0.0))
            else:
                batch_outages.append(Outage(start_s, end_s, 1.0, config.refused_s))
        elif isinstance(fault, ProcessFault):
            graceful = fault.action is ProcessAction.RESTART
            if fault.target is ProcessTarget.API:
                ingest_outages.append(Outage(start_s, end_s, 1.0, 0.0))
            else:
                stops.append(ConsumerStop(start_s, end_s, fault.target is ProcessTarget.ALL_CONSUMERS, graceful))
        elif isinstance(fault, ToxicFault):
            fail_after_s = _fail_after_s(fault, config)
            if fault.toxic is ToxicType.LATENCY:
                latency_s = fault.attributes.get("latency", 0) / 1000.0 * fault.toxicity
                if latency_s <= 0:
                    continue
                if fault.link in _INGEST_LINKS:
                    ingest_delays.append(Delay(start_s, end_s, latency_s))
                elif fault.link is Link.CONSUMER_POSTGRES:
                    batch_delays.append(Delay(start_s, end_s, latency_s * config.postgres_round_trips_per_batch))
                else:
                    batch_delays.append(Delay(start_s, end_s, latency_s * config.redis_round_trips_per_batch))
            elif fail_after_s is not None:
                if fault.link in _INGEST_LINKS:
                    ingest_outages.append(Outage(start_s, end_s, fault.toxicity, fail_after_s))
                else:
                    batch_outages.append(Outage(start_s, end_s, fault.toxicity, fail_after_s))
            else:
                unmapped.append(f"{fault.describe()} at {start_s:g}s")
        else:  # pragma: no cover - FaultSchedule admits only the three kinds
            raise TypeError(f"not a fault: {fault!r}")
    return FaultWindows(
        tuple(ingest_outages), tuple(ingest_delays), tuple(batch_outages), tuple(batch_delays), tuple(stops),
        tuple(unmapped),
    )  # fmt: skip
