"""Benchmark: simulated events per wall-clock second of the capacity model against a bare SimPy M/M/c loop.

An "event" is one posting (one customer) that arrives and is served; SimPy's
own internal events are not counted, so both sides are measured in the same
unit. Bare loop: the textbook SimPy shape (a source process, one process per
customer, a Resource with c servers). Pipeline: harness.capacity.simulate on
the same M/M/c input (shared queue, batch 1), then in a realistic
configuration (16 partitions, batches, lognormal service, reactive scaling, a
fault), and a one-hour profile end to end (arrivals, simulation, the backlog
samples). Goal (issue 7): the pipeline at >= 50% of the bare loop's speed.

    python benchmarks/bench_capacity.py [--events 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simpy  # noqa: E402  (the bare loop is SimPy by definition)

from harness.capacity import (  # noqa: E402 - after the sys.path line that makes the checkout importable
    Deterministic,
    Exponential,
    LogNormal,
    ModelConfig,
    Ownership,
    ReactiveScaling,
    Workers,
    simulate,
)
from harness.faults.schedule import FaultSchedule, Link, ToxicFault, ToxicType  # noqa: E402 - after the sys.path line that makes the checkout importable
from harness.load.profile import Steady, Surge  # noqa: E402 - after the sys.path line that makes the checkout importable

SERVERS, ARRIVAL_PER_S, SERVICE_PER_S = 3, 2.4, 1.0


def bare_mmc(customers: int, seed: int) -> float:
    """Wall seconds for a bare SimPy M/M/c loop serving `customers`."""
    rng = random.Random(seed)
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=SERVERS)
    waits = []

    def customer(env, arrived_s):
        with servers.request() as request:
            yield request
            waits.append(env.now - arrived_s)
            yield env.timeout(rng.expovariate(SERVICE_PER_S))

    def source(env):
        for _ in range(customers):
            yield env.timeout(rng.expovariate(ARRIVAL_PER_S))
            env.process(customer(env, env.now))

    began = time.perf_counter()
    env.process(source(env))
    env.run()
    elapsed = time.perf_counter() - began
    assert len(waits) == customers
    return elapsed


def lean_mmc(customers: int, seed: int) -> float:
    """Wall seconds for a hand-tuned bare M/M/c loop: c server processes and a deque, no Resource.

    Why also this one: the textbook loop pays for a process and a Resource
    request per customer; this is the fastest plain SimPy shape we know, so the
    pipeline's ratio to it is the honest lower figure.
    """
    rng = random.Random(seed)
    env = simpy.Environment()
    queue: deque = deque()
    idle: list = []
    waits = []

    def server(env):
        while True:
            if not queue:
                wake = env.event()
                idle.append(wake)
                yield wake
                continue
            waits.append(env.now - queue.popleft())
            yield env.timeout(rng.expovariate(SERVICE_PER_S))

    def source(env):
        for _ in range(customers):
            yield env.timeout(rng.expovariate(ARRIVAL_PER_S))
            queue.append(env.now)
            if idle:
                idle.pop().succeed()

    began = time.perf_counter()
    for _ in range(SERVERS):
        env.process(server(env))
    env.process(source(env))
    env.run()
    elapsed = time.perf_counter() - began
    assert len(waits) == customers
    return elapsed


def timed(fn, repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="customers per M/M/c run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the fastest is kept)")
    args = parser.parse_args()
    n = args.events

    bare_s = timed(lambda: bare_mmc(n, 1), args.repeat)
    lean_s = timed(lambda: lean_mmc(n, 1), args.repeat)

    mmc = ModelConfig(partitions=1, consumers=SERVERS, batch_size_max=1, overhead=Deterministic(0.0),
                      per_event=Exponential(1.0 / SERVICE_PER_S), ownership=Ownership.SHARED,
                      workers=Workers.PER_CONSUMER, backlog_high_water_events=None, events_max=10 * n)  # fmt: skip
    mmc_profile = Steady(ARRIVAL_PER_S, n / ARRIVAL_PER_S)
    counts = {}

    def pipeline_mmc() -> float:
        began = time.perf_counter()
        p = simulate(mmc, mmc_profile, None, seed=1)
        counts["mmc"] = p.arrivals_count
        return time.perf_counter() - began

    mmc_s = timed(pipeline_mmc, args.repeat)

    def pipeline_mmc_core() -> float:
        # The simulation alone, without drawing the arrivals nor building the output frames
        # (private API, for this breakdown only): what the comparison with a bare loop is about.
        from harness.capacity import model as internals

        arrivals = list(internals.arrival_times(mmc_profile, internals.arrival_rng(1)))
        began = time.perf_counter()
        sim = internals._Sim(mmc, arrivals, mmc_profile.duration_s, internals.map_faults(None, mmc), 1)
        sim.run()
        counts["mmc_core"] = len(arrivals)
        return time.perf_counter() - began

    mmc_core_s = timed(pipeline_mmc_core, args.repeat)

    realistic = ModelConfig(
        partitions=16, consumers=4, batch_size_max=100, overhead=LogNormal(0.004, 0.5),
        per_event=LogNormal(0.0015, 0.8), backlog_high_water_events=50_000, events_max=10 * n,
        scaling=ReactiveScaling(backlog_high_events=2000, backlog_low_events=200, consumers_min=2, consumers_max=12,
                                cooldown_s=30, startup_s=15),
    )  # fmt: skip
    surge = Surge(base_rate_per_s=200, peak_rate_per_s=1200, ramp_up_s=60, hold_s=120, ramp_down_s=60,
                  duration_s=max(300.0, n / 500), start_s=30)  # fmt: skip
    faults = FaultSchedule((ToxicFault(Link.CONSUMER_POSTGRES, ToxicType.LATENCY, 100.0, 30.0,
                                       attributes={"latency": 20}),))  # fmt: skip

    def pipeline_realistic() -> float:
        began = time.perf_counter()
        p = simulate(realistic, surge, faults, seed=1)
        counts["realistic"] = p.arrivals_count
        return time.perf_counter() - began

    realistic_s = timed(pipeline_realistic, args.repeat)

    hour = Steady(200.0, 3600.0)
    began = time.perf_counter()
    hour_prediction = simulate(dataclass_replace(realistic, events_max=2_000_000), hour, None, seed=1)
    hour_s = time.perf_counter() - began

    bare_rate = n / bare_s
    rows = [
        ("bare SimPy M/M/c loop (textbook: Resource, a process per customer)", n, bare_s, bare_rate),
        ("bare SimPy M/M/c loop (lean: c server processes, a deque)", n, lean_s, n / lean_s),
        ("pipeline model, M/M/c configuration", counts["mmc"], mmc_s, counts["mmc"] / mmc_s),
        (
            "  the same, simulation only (no arrival drawing, no output frames)",
            counts["mmc_core"],
            mmc_core_s,
            counts["mmc_core"] / mmc_core_s,
        ),  # fmt: skip
        (
            "pipeline model, realistic (16 part., B=100, scaling, fault)",
            counts["realistic"],
            realistic_s,
            counts["realistic"] / realistic_s,
        ),  # fmt: skip
        (
            "one-hour profile, 200/s, end to end",
            hour_prediction.arrivals_count,
            hour_s,
            hour_prediction.arrivals_count / hour_s,
        ),  # fmt: skip
    ]
    print(
        f"capacity model benchmark (best of {args.repeat}; Python {sys.version.split()[0]}, simpy {simpy.__version__})"
    )
    print(f"  {'run':70s} {'events':>9s} {'wall s':>8s} {'events/s':>10s} {'vs bare':>8s} {'vs lean':>8s}")
    for name, events, wall_s, rate in rows:
        print(f"  {name:70s} {events:9d} {wall_s:8.2f} {rate:10.0f} {rate / bare_rate:7.0%} {rate * lean_s / n:7.0%}")
    ratio = (counts["mmc"] / mmc_s) / bare_rate
    lean_ratio = (counts["mmc"] / mmc_s) * lean_s / n
    print(f"  goal: pipeline (M/M/c configuration) >= 50% of the bare loop: {'met' if ratio >= 0.5 else 'NOT met'} "
          f"({ratio:.0%} of the textbook loop, {lean_ratio:.0%} of the lean one)")  # fmt: skip
    print(f"  one simulated hour took {hour_s:.1f} s of wall time")
    return 0


def dataclass_replace(config: ModelConfig, **changes) -> ModelConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


if __name__ == "__main__":
    sys.exit(main())
