"""The pipeline model's behaviour: exact timelines on tiny inputs, faults, shedding, scaling, limits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.capacity import (
    Deterministic,
    Exponential,
    ModelConfig,
    Outcome,
    PredictiveScaling,
    ReactiveScaling,
    RetryPolicy,
    Workers,
    simulate,
    simulate_arrivals,
)
from harness.capacity.prediction import BACKLOG_METRIC, CONSUMERS_METRIC
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
from harness.history.schema import METRICS_COLUMNS
from harness.load.profile import Steady, Surge


def _fixed(overhead_s: float = 1.0, per_event_s: float = 0.0, **kw) -> ModelConfig:
    """Deterministic service: timelines can be asserted exactly."""
    base = dict(partitions=1, consumers=1, batch_size_max=2, overhead=Deterministic(overhead_s),
                per_event=Deterministic(per_event_s), backlog_high_water_events=None)  # fmt: skip
    base.update(kw)
    return ModelConfig(**base)


def test_batches_follow_an_exact_timeline():
    # Five events at t=0, one consumer, batches of two taking 1 s each: done at 1, 1, 2, 2, 3.
    p = simulate_arrivals(_fixed(), [0.0] * 5, duration_s=1.0)
    assert p.trace.done_s.tolist() == [1.0, 1.0, 2.0, 2.0, 3.0]
    assert p.trace.start_s.tolist() == [0.0, 0.0, 1.0, 1.0, 2.0]
    assert p.latency_ms_p50 == pytest.approx(2000.0)
    assert p.drain_s_after_last_arrival == pytest.approx(3.0)
    assert p.applied_count == 5 and p.completed


def test_per_event_cost_scales_with_batch_size():
    # overhead 1 s + 0.5 s per event: a batch of 2 takes 2 s, the last single event 1.5 s.
    p = simulate_arrivals(_fixed(1.0, 0.5), [0.0] * 3, duration_s=1.0)
    assert p.trace.done_s.tolist() == [2.0, 2.0, 3.5]


def test_same_seed_same_prediction_other_seed_other_prediction():
    config = ModelConfig(partitions=4, consumers=2, batch_size_max=10)
    a = simulate(config, Steady(200, 5), None, seed=3)
    b = simulate(config, Steady(200, 5), None, seed=3)
    c = simulate(config, Steady(200, 5), None, seed=4)
    assert a.summary() == b.summary()
    assert a.summary() != c.summary()


def test_every_arrival_is_accounted_for():
    config = ModelConfig(partitions=4, consumers=1, batch_size_max=5, per_event=Exponential(0.01),
                         backlog_high_water_events=50, transient_failure_probability=0.5,
                         retry=RetryPolicy(attempts_max=2, backoff_base_s=0.01))  # fmt: skip
    p = simulate(config, Steady(300, 10), None, seed=1)
    assert p.arrivals_count == p.accepted_count + p.shed_count + p.unavailable_count
    assert p.accepted_count == p.applied_count + p.dead_lettered_count + p.backlog_left_events
    assert p.shed_count > 0 and p.dead_lettered_count > 0


def test_backpressure_keeps_the_backlog_under_the_high_water_mark():
    config = ModelConfig(partitions=2, consumers=1, batch_size_max=1, overhead=Deterministic(0.01),
                         per_event=Deterministic(0.0), backlog_high_water_events=20)  # fmt: skip
    p = simulate(config, Steady(500, 5), None, seed=1)  # 2.5× overload (two partition workers)
    assert p.backlog_events_peak <= 20
    assert p.shed_share > 0.5


def test_metrics_are_in_the_history_long_format_and_partitions_sum_to_total():
    p = simulate(ModelConfig(partitions=3, consumers=2), Steady(300, 4), None, seed=1)
    assert list(p.metrics.columns) == list(METRICS_COLUMNS)
    assert {str(t) for t in p.metrics.dtypes} == {"float64", "string", "Int64"}
    backlog = p.metrics[p.metrics["metric"] == BACKLOG_METRIC]
    per_partition = backlog[backlog["partition"].notna()].groupby("time_s")["value"].sum()
    total = backlog[backlog["partition"].isna()].set_index("time_s")["value"]
    assert np.array_equal(per_partition.values, total.loc[per_partition.index].values)
    times = total.index.to_numpy()
    assert np.allclose(np.diff(times), 0.25)
    # Partition 1 counted by brute force from the trace.
    t = p.trace
    left = (t.outcome == Outcome.APPLIED) | (t.outcome == Outcome.DEAD_LETTERED)
    in_1 = t.partition == 1
    expected = [int(((t.enqueue_s <= x) & in_1).sum() - ((t.done_s <= x) & in_1 & left).sum()) for x in times]
    got = backlog[backlog["partition"] == 1]["value"].astype(int).tolist()
    assert got == expected


def test_per_partition_rows_are_dropped_past_the_metrics_bound(monkeypatch):
    import harness.capacity.prediction as prediction_module

    monkeypatch.setattr(prediction_module, "METRICS_ROWS_MAX", 10)
    p = simulate(ModelConfig(partitions=3, consumers=2), Steady(300, 4), None, seed=1)
    backlog = p.metrics[p.metrics["metric"] == BACKLOG_METRIC]
    assert backlog["partition"].isna().all() and len(backlog) > 0
    assert any("METRICS_ROWS_MAX" in n for n in p.notes)


def test_database_outage_is_waited_out_not_dead_lettered():
    # The reference consumer treats an unreachable database as "unavailable": it backs off
    # (capped) until the database is back, and dead-letters nothing.
    faults = FaultSchedule((LinkDown(Link.CONSUMER_POSTGRES, 0.0, 10.0),))
    config = _fixed(0.01, retry=RetryPolicy(attempts_max=3, backoff_base_s=0.01, backoff_cap_s=0.5))
    p = simulate_arrivals(config, [0.0, 0.0, 0.0], duration_s=1.0, faults=faults)
    assert p.applied_count == 3 and p.dead_lettered_count == 0
    assert (p.trace.done_s >= 10.0).all() and (p.trace.done_s < 10.6).all()


def test_outage_dead_letters_when_retries_are_bounded_on_outage():
    faults = FaultSchedule((LinkDown(Link.CONSUMER_POSTGRES, 0.0, 100.0),))
    config = _fixed(0.01, retry=RetryPolicy(attempts_max=3, backoff_base_s=0.01, backoff_cap_s=0.05,
                                            bounded_on_outage=True))  # fmt: skip
    p = simulate_arrivals(config, [0.0, 0.0, 0.0], duration_s=1.0, faults=faults)
    assert p.dead_lettered_count == 3 and p.applied_count == 0


def test_exhausted_batch_is_applied_one_by_one_so_only_failing_events_are_dead_lettered():
    # Every attempt fails while transient_failure_probability is near 1 → all dead-lettered,
    # each one individually after attempts_max tries of its own.
    config = _fixed(0.01, batch_size_max=4, transient_failure_probability=0.999999,
                    retry=RetryPolicy(attempts_max=2, backoff_base_s=0.001, backoff_cap_s=0.001))  # fmt: skip
    p = simulate_arrivals(config, [0.0] * 4, duration_s=1.0)
    assert p.dead_lettered_count == 4
    # 2 batch attempts, then 2 attempts per event: the events leave one after another.
    assert len(set(p.trace.done_s.tolist())) == 4


def test_short_outage_is_ridden_out_by_retries():
    faults = FaultSchedule((LinkDown(Link.CONSUMER_POSTGRES, 0.0, 0.05),))
    config = _fixed(0.01, retry=RetryPolicy(attempts_max=8, backoff_base_s=0.05, backoff_cap_s=1.0))
    p = simulate_arrivals(config, [0.0, 0.0], duration_s=1.0, faults=faults, seed=5)
    assert p.applied_count == 2 and p.dead_lettered_count == 0
    assert p.trace.done_s[0] > 0.05


def test_postgres_latency_slows_each_batch_by_its_round_trips():
    faults = FaultSchedule((ToxicFault(Link.CONSUMER_POSTGRES, ToxicType.LATENCY, 0.0, 10.0,
                                       attributes={"latency": 100}),))  # fmt: skip
    p = simulate_arrivals(_fixed(1.0, postgres_round_trips_per_batch=3), [0.0, 0.0], duration_s=1.0, faults=faults)
    # 1 s + 3 round trips × 0.1 s.
    assert p.trace.done_s.tolist() == pytest.approx([1.3, 1.3])
    p = simulate_arrivals(_fixed(1.0), [0.0, 0.0], duration_s=1.0, faults=faults)
    assert p.trace.done_s.tolist() == pytest.approx([1.1, 1.1])  # the reference consumer: one statement


def test_api_redis_down_answers_unavailable_inside_the_window_only():
    faults = FaultSchedule((LinkDown(Link.API_REDIS, 2.0, 1.0),))
    arrivals = [0.5, 1.5, 2.1, 2.9, 3.5]
    p = simulate_arrivals(_fixed(0.01), arrivals, duration_s=4.0, faults=faults)
    assert p.trace.outcome.tolist() == [Outcome.APPLIED, Outcome.APPLIED, Outcome.UNAVAILABLE,
                                        Outcome.UNAVAILABLE, Outcome.APPLIED]  # fmt: skip


def test_client_api_latency_delays_the_enqueue():
    faults = FaultSchedule((ToxicFault(Link.CLIENT_API, ToxicType.LATENCY, 0.0, 10.0,
                                       attributes={"latency": 250}),))  # fmt: skip
    p = simulate_arrivals(_fixed(1.0), [1.0], duration_s=2.0, faults=faults)
    assert p.trace.enqueue_s[0] == pytest.approx(1.25)
    assert p.trace.done_s[0] == pytest.approx(2.25)


def test_one_consumer_kill_waits_for_the_lease_before_others_take_its_partitions():
    # Two consumers, two partitions, consumer 0 owns partition 0. Killed 10..40 s, lease 5 s.
    config = _fixed(0.01, partitions=2, consumers=2, batch_size_max=1, lease_expiry_s=5.0)
    faults = FaultSchedule((ProcessFault(ProcessAction.KILL, ProcessTarget.ONE_CONSUMER, 10.0, 30.0),))
    p = simulate(config, Steady(20, 30), faults, seed=1)
    t = p.trace
    stuck = (t.partition == 0) & (t.enqueue_s > 10.5) & (t.enqueue_s < 14.0)
    assert stuck.any()
    assert (t.done_s[stuck] >= 15.0).all()  # reclaimed at 10 + 5 s, not before
    assert (t.done_s[stuck] < 16.0).all()  # and then promptly, by consumer 1
    other = (t.partition == 1) & (t.enqueue_s > 10.5) & (t.enqueue_s < 14.0)
    assert (t.done_s[other] - t.enqueue_s[other] < 0.1).all()


def test_all_consumers_pause_stops_all_applies_in_the_window():
    faults = FaultSchedule((ProcessFault(ProcessAction.PAUSE, ProcessTarget.ALL_CONSUMERS, 5.0, 3.0),))
    config = ModelConfig(partitions=2, consumers=2, batch_size_max=10, lease_expiry_s=1.0)
    p = simulate(config, Steady(100, 10), faults, seed=1)
    done = p.trace.done_s
    assert not ((done > 5.0 + 0.05) & (done < 8.0)).any()  # at most the batch in flight at 5.0
    assert p.applied_count == p.accepted_count  # nothing lost: the killed batch is delivered again
    assert p.backlog_events_peak >= 250


def test_unmapped_faults_are_named_in_the_notes():
    faults = FaultSchedule((ToxicFault(Link.CONSUMER_REDIS, ToxicType.BANDWIDTH, 1.0, 1.0,
                                       attributes={"rate": 10}),))  # fmt: skip
    p = simulate(ModelConfig(), Steady(10, 3), faults, seed=1)
    assert any("bandwidth" in n for n in p.notes)


_SURGE = Surge(base_rate_per_s=200, peak_rate_per_s=1200, ramp_up_s=60, hold_s=60, ramp_down_s=30,
               duration_s=240, start_s=30)  # fmt: skip
# One batch at a time per consumer: the pool size is the capacity, which is what scaling changes.
_BATCH_COST = dict(
    partitions=8,
    batch_size_max=20,
    overhead=Deterministic(0.02),
    per_event=Exponential(0.001),
    workers=Workers.PER_CONSUMER,
)


def _first_scale_up_s(prediction) -> float:
    m = prediction.metrics
    consumers = m[m["metric"] == CONSUMERS_METRIC].reset_index(drop=True)
    up = consumers[consumers["value"] > consumers["value"].iloc[0]]
    return float(up["time_s"].iloc[0]) if len(up) else math.inf


def test_reactive_scaling_adds_consumers_under_a_surge_and_costs_more():
    fixed = simulate(ModelConfig(consumers=2, **_BATCH_COST), _SURGE, None, seed=1)
    reactive = ModelConfig(consumers=2, scaling=ReactiveScaling(backlog_high_events=200, backlog_low_events=20,
                           consumers_min=2, consumers_max=8, cooldown_s=10, startup_s=5), **_BATCH_COST)  # fmt: skip
    scaled = simulate(reactive, _SURGE, None, seed=1)
    assert scaled.consumers_peak > 2
    assert scaled.consumer_seconds > fixed.consumer_seconds
    assert scaled.latency_ms_p99 < fixed.latency_ms_p99


def test_predictive_scaling_starts_before_the_backlog_builds():
    reactive = ModelConfig(consumers=2, scaling=ReactiveScaling(backlog_high_events=200, backlog_low_events=20,
                           consumers_min=2, consumers_max=8, cooldown_s=10, startup_s=5), **_BATCH_COST)  # fmt: skip
    predictive = ModelConfig(consumers=2, scaling=PredictiveScaling(events_per_consumer_per_s=250, consumers_min=2,
                             consumers_max=8, horizon_s=15, startup_s=5), **_BATCH_COST)  # fmt: skip
    r = simulate(reactive, _SURGE, None, seed=1)
    p = simulate(predictive, _SURGE, None, seed=1)
    assert _SURGE.start_s < _first_scale_up_s(p) < _first_scale_up_s(r)
    assert p.backlog_events_peak < r.backlog_events_peak


def test_drain_limit_stops_an_overloaded_run_and_says_so():
    config = _fixed(1.0, batch_size_max=1, drain_s_max=5.0)
    p = simulate(config, Steady(10, 2), None, seed=1)
    assert not p.completed
    assert p.backlog_left_events > 0
    assert p.end_s == pytest.approx(7.0)
    assert p.drain_s_after_last_arrival is None


def test_events_max_bounds_a_run():
    with pytest.raises(ValueError, match="events_max"):
        simulate(ModelConfig(events_max=100), Steady(1000, 1), None, seed=1)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(partitions=0), "partitions"),
        (dict(consumers=2.5), "consumers"),
        (dict(batch_size_max=0), "batch_size_max"),
        (dict(backlog_high_water_events=0), "backlog_high_water_events"),
        (dict(overhead=Deterministic(0.0), per_event=Deterministic(0.0)), "overhead"),
        (dict(consumers=1, scaling=ReactiveScaling(10, 1, 2, 4)), "consumers"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**kwargs)


def test_model_arrivals_are_the_live_schedule_arrivals():
    # One definition, two consumers: the model sees exactly the send times the load driver schedules.
    from harness.load.generator import GeneratorConfig
    from harness.load.schedule import open_schedule

    profile = Surge(base_rate_per_s=20, peak_rate_per_s=80, ramp_up_s=2, hold_s=2, ramp_down_s=2, duration_s=8)
    live = [a.intended_time_s for a in open_schedule(profile, GeneratorConfig(), seed=42)]
    model = simulate(ModelConfig(), profile, None, seed=42).trace.arrival_s.tolist()
    assert model == live and len(live) > 100
