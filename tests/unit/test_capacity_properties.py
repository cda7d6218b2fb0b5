"""Properties of the model over random small configurations and fault schedules (Hypothesis).

Whatever the plan and the faults: every arrival is accounted for exactly once,
the backlog never passes the high-water mark by more than the delayed enqueues
in flight, nothing is applied before it arrived, a run is a function of its
seed, and the backlog samples agree with the per-event trace.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.capacity import (
    Deterministic,
    Exponential,
    LogNormal,
    ModelConfig,
    NoScaling,
    Outcome,
    PredictiveScaling,
    ReactiveScaling,
    RetryPolicy,
    Workers,
    simulate,
)
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
from harness.load.profile import MicroBurst

DURATION_S = 8.0

_windows = dict(start_s=st.floats(0.0, DURATION_S - 0.5), duration_s=st.floats(0.1, 3.0))
_faults = st.lists(
    st.one_of(
        st.builds(LinkDown, link=st.sampled_from(list(Link)), **_windows),
        st.builds(
            ProcessFault,
            action=st.sampled_from(list(ProcessAction)),
            target=st.sampled_from(list(ProcessTarget)),
            **_windows,
        ),  # fmt: skip
        st.builds(
            ToxicFault,
            link=st.sampled_from(list(Link)),
            toxic=st.just(ToxicType.LATENCY),
            toxicity=st.floats(0.0, 1.0),
            attributes=st.fixed_dictionaries({"latency": st.integers(0, 300)}),
            **_windows,
        ),  # fmt: skip
        st.builds(
            ToxicFault,
            link=st.sampled_from(list(Link)),
            toxic=st.sampled_from([ToxicType.TIMEOUT, ToxicType.RESET_PEER]),
            toxicity=st.floats(0.0, 1.0),
            attributes=st.fixed_dictionaries({"timeout": st.integers(0, 500)}),
            **_windows,
        ),  # fmt: skip
    ),
    max_size=3,
)


@st.composite
def _configs(draw):
    consumers = draw(st.integers(1, 4))
    scaling = draw(st.sampled_from(["none", "reactive", "predictive"]))
    if scaling == "reactive":
        policy = ReactiveScaling(backlog_high_events=draw(st.integers(5, 50)), backlog_low_events=2,
                                 consumers_min=1, consumers_max=5, cooldown_s=1.0, startup_s=0.5)  # fmt: skip
    elif scaling == "predictive":
        policy = PredictiveScaling(events_per_consumer_per_s=draw(st.floats(20, 200)), consumers_min=1,
                                   consumers_max=5, horizon_s=2.0, window_s=4.0, cooldown_s=1.0, startup_s=0.5)  # fmt: skip
    else:
        policy = NoScaling()
    return ModelConfig(
        partitions=draw(st.integers(1, 6)),
        consumers=consumers,
        batch_size_max=draw(st.integers(1, 20)),
        overhead=draw(st.sampled_from([Deterministic(0.005), Exponential(0.01), LogNormal(0.01, 0.7)])),
        per_event=draw(st.sampled_from([Deterministic(0.001), Exponential(0.002), LogNormal(0.002, 1.0)])),
        backlog_high_water_events=draw(st.one_of(st.none(), st.integers(5, 200))),
        retry=RetryPolicy(attempts_max=draw(st.integers(1, 4)), backoff_base_s=0.01, backoff_cap_s=0.2),
        lease_expiry_s=draw(st.floats(0.0, 2.0)),
        scaling=policy,
        transient_failure_probability=draw(st.sampled_from([0.0, 0.1])),
        drain_s_max=draw(st.sampled_from([1.0, 30.0])),
        workers=draw(st.sampled_from(list(Workers))),
        consumer_cpu_share=draw(st.sampled_from([0.0, 0.5, 1.0])),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=_configs(), faults=_faults, seed=st.integers(0, 2**32))
def test_every_arrival_is_accounted_for_once_and_runs_are_reproducible(config, faults, seed):
    schedule = FaultSchedule(tuple(faults))
    profile = MicroBurst(base_rate_per_s=80, duration_s=DURATION_S)
    p = simulate(config, profile, schedule, seed)
    t = p.trace
    counts = np.bincount(t.outcome, minlength=5)
    assert counts.sum() == p.arrivals_count
    assert p.accepted_count == counts[Outcome.APPLIED] + counts[Outcome.DEAD_LETTERED] + counts[Outcome.PENDING]
    assert p.arrivals_count == p.accepted_count + p.shed_count + p.unavailable_count
    done = ~np.isnan(t.done_s)
    assert (t.done_s[done] >= t.arrival_s[done]).all()
    assert (t.enqueue_s[done] >= t.arrival_s[done]).all()
    assert p.completed == (p.backlog_left_events == 0)
    if config.backlog_high_water_events is not None and not any(
        isinstance(f, ToxicFault) and f.toxic is ToxicType.LATENCY for f in faults
    ):
        assert p.backlog_events_peak <= config.backlog_high_water_events
    # The total backlog at the last sample is what was left.
    total = p.backlog_total()
    in_queue = (t.outcome == Outcome.PENDING) & ~np.isnan(t.enqueue_s)
    assert total["value"].iloc[-1] == in_queue.sum()
    assert p.consumer_seconds > 0 and p.consumer_utilisation >= 0
    if config.workers is Workers.PER_CONSUMER:
        # One batch at a time per consumer; per-partition workers overlap, as the live gauge does.
        assert p.consumer_utilisation <= 1.0 + 1e-9
    again = simulate(config, profile, schedule, seed)
    assert again.summary() == p.summary()
