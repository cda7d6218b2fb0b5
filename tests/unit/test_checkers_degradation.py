"""graceful_degradation on small timelines: explicit bounded answers inside fault windows, recovery measured after."""

from __future__ import annotations

import math

import pytest

from harness.checkers import CheckConfig, Validity, graceful_degradation
from harness.checkers.timeline import Timeline

RATE_PER_S = 10
STEP_S = 1.0 / RATE_PER_S


def steady(t: Timeline, start: float, end: float, answer, prefix: str = "e") -> None:
    """One submit every 0.1 s in [start, end); answer(time) -> (outcome, kwargs)."""
    n = int(round((end - start) / STEP_S))
    for i in range(n):
        at = round(start + i * STEP_S, 6)
        outcome, kw = answer(at)
        t.submit(f"{prefix}{at:.1f}", at, outcome, **kw)


def ok(at):
    return "ok", {}


def refused(at):
    return "info", {"status": 503, "error": "http_503", "retry_after_s": 1.0, "took": 0.005}


def with_fault(stop_s: float = 15.0, after=ok, during=refused, end_s: float = 50.0, closed: bool = False) -> Timeline:
    """Baseline 0-10 s all ok; a fault 10 s..stop_s answered by `during`; then `after` until end_s."""
    t = Timeline(closed_model=closed)
    steady(t, 0.0, 10.0, ok)
    steady(t, 10.0, stop_s, during)
    steady(t, stop_s, end_s, after)
    t.fault(start=10.0, stop=stop_s, fault="down on api_redis")
    return t


def judge(t: Timeline, **config):
    return graceful_degradation(t.build(), CheckConfig(**config))


def test_explicit_refusals_and_a_quick_recovery_hold_and_report_the_recovery_time():
    verdict = judge(with_fault())
    assert verdict.validity is Validity.VALID, verdict.summary
    assert verdict.figures["fault_0.recovery_s"] == 0.0
    assert verdict.figures["baseline_ok_per_s"] == pytest.approx(10.0)
    assert verdict.counts["explicit_refusals"] == 50
    assert verdict.counts["fault_windows"] == 1


@pytest.mark.parametrize(
    "during, count, words",
    [
        (lambda at: ("info", {"status": 500, "error": "http_500"}), "server_errors", "answered 500"),
        (
            lambda at: ("info", {"status": 503, "error": "http_503"}),
            "throttled_without_retry_after",
            "503 without Retry-After",
        ),
        (lambda at: ("fail", {"status": 429}), "throttled_without_retry_after", "429 without Retry-After"),
        (lambda at: ("info", {"error": "timeout", "took": 2.0}), "hangs", "hung: timed out"),
        (lambda at: ("ok", {"took": 2.5}), "slow", "over the 2000 ms bound"),
        (
            lambda at: ("info", {"error": "connection_reset"}),
            "transport_errors",
            "without an answer (connection_reset)",
        ),
        (lambda at: (None, {}), "hangs", "hung: never answered"),
    ],
    ids=["500", "503-no-retry-after", "429-no-retry-after", "timeout", "slow", "reset", "no-answer"],
)
def test_hangs_5xx_and_refusals_without_retry_after_inside_a_fault_violate(during, count, words):
    verdict = judge(with_fault(during=during))
    assert verdict.validity is Validity.INVALID
    assert verdict.counts[count] == 50
    assert words in verdict.evidence[0].problem
    assert "fault 0 (down on api_redis)" in verdict.evidence[0].problem
    assert verdict.evidence[0].ops, "evidence carries the op's history"


def test_the_grace_period_is_judged_too_and_outside_it_nothing_is():
    t = with_fault()
    t.info("late-500", at=17.0, status=500, error="http_500")  # within stop + grace (5 s)
    t.info("later-500", at=30.0, status=500, error="http_500")  # outside every window: not this checker's business
    verdict = judge(t)
    assert verdict.validity is Validity.INVALID
    assert verdict.counts["server_errors"] == 1
    assert verdict.evidence[0].event_id == "late-500"
    assert judge(t, grace_s=1.0).validity is Validity.VALID


def test_an_op_invoked_before_the_fault_that_hangs_into_it_is_judged():
    t = with_fault()
    t.info("straddle", at=9.5, error="timeout", took=2.0)
    verdict = judge(t)
    assert verdict.counts["hangs"] == 1


def test_ops_the_harness_cut_short_are_not_the_apis_fault():
    t = with_fault()
    t.info("cut", at=11.0, error="client_stopped", took=0.3)  # the load stopped with it in flight
    verdict = judge(t)
    assert verdict.validity is Validity.VALID, verdict.summary
    assert verdict.counts["unfinished_at_history_end"] == 1


def test_transport_errors_can_be_allowed_for_faults_on_the_client_link():
    reset = lambda at: ("info", {"error": "connection_refused"})  # noqa: E731 - a one-line answer table entry, read beside its neighbours
    assert judge(with_fault(during=reset)).validity is Validity.INVALID
    allowed = judge(with_fault(during=reset), degradation_errors_allowed=["connection_refused"])
    assert allowed.validity is Validity.VALID, allowed.summary


def test_no_recovery_within_the_bound_is_a_violation_with_an_infinite_recovery_time():
    def trickle(at):  # one ok in five after the fault (20% of baseline)
        return ok(at) if int(round(at * 10)) % 5 == 0 else refused(at)

    verdict = judge(with_fault(after=trickle))
    assert verdict.validity is Validity.INVALID
    assert verdict.counts["faults_not_recovered"] == 1
    assert math.isinf(verdict.figures["fault_0.recovery_s"])
    assert any("never reached 0.8 of the baseline within 30 s" in e.problem for e in verdict.evidence)


def test_a_slow_recovery_is_measured():
    back_s = 21.0  # six seconds after the stop at 15 s

    def slow(at):
        return ok(at) if at >= back_s else refused(at)

    verdict = judge(with_fault(after=slow))
    assert verdict.validity is Validity.VALID, verdict.summary
    # The first 2 s window with >= 80% ok starts 0.4 s before the return (quarter-second steps): 5.75 s.
    assert verdict.figures["fault_0.recovery_s"] == pytest.approx(5.75)
    assert judge(with_fault(after=slow), recovery_s_max=5.0).validity is Validity.INVALID


def test_recovery_is_unknown_when_the_load_ends_before_it_can_be_observed():
    verdict = judge(with_fault(after=refused, end_s=25.0))
    assert verdict.validity is Validity.UNKNOWN
    assert "the load ended" in verdict.summary


def test_open_model_recovery_follows_the_offered_rate():
    """After the fault the profile offers half the rate; every request succeeds: recovered."""
    t = Timeline()
    steady(t, 0.0, 10.0, ok)
    steady(t, 10.0, 15.0, refused)
    for i in range(175):  # 5 per second from 15 s to 50 s
        t.ok(f"slow{i}", at=15.0 + i * 0.2)
    t.fault(start=10.0, stop=15.0)
    assert judge(t).validity is Validity.VALID


def test_closed_model_recovery_is_measured_against_the_baseline_rate():
    t = Timeline(closed_model=True)
    steady(t, 0.0, 10.0, ok)
    steady(t, 10.0, 15.0, refused)
    for i in range(175):  # the system now serves half as fast: no intended times to excuse it
        t.ok(f"slow{i}", at=15.0 + i * 0.2)
    t.fault(start=10.0, stop=15.0)
    verdict = judge(t)
    assert verdict.validity is Validity.INVALID
    assert "baseline_offered_per_s" not in verdict.figures


def test_the_baseline_phase_is_used_when_the_meta_names_one():
    t = with_fault()
    t.phase("baseline", 2.0, 10.0)
    verdict = judge(t)
    assert verdict.validity is Validity.VALID
    assert verdict.figures["baseline_ok_per_s"] == pytest.approx(10.0)


def test_without_a_baseline_recovery_is_unknown():
    t = Timeline()
    steady(t, 0.0, 30.0, ok)
    t.fault(start=0.5, stop=5.0)
    verdict = judge(t)
    assert verdict.validity is Validity.UNKNOWN
    assert "baseline" in verdict.summary


def test_a_fault_never_stopped_makes_recovery_unknown():
    t = Timeline()
    steady(t, 0.0, 20.0, ok)
    t.fault(start=10.0, stop=None)
    verdict = judge(t)
    assert verdict.validity is Validity.UNKNOWN
    assert "never stopped" in verdict.summary


def test_no_fault_window_is_not_judged_unless_windows_were_expected():
    t = Timeline()
    steady(t, 0.0, 5.0, ok)
    nothing = judge(t)
    assert nothing.validity is Validity.NOT_JUDGED and "no fault window" in nothing.summary
    expected = judge(t, fault_windows_min=1)
    assert expected.validity is Validity.UNKNOWN
    assert "nemesis ops" in expected.summary


def test_overlapping_faults_are_recovered_from_once():
    t = with_fault(stop_s=15.0)
    t.fault(start=12.0, stop=16.0, fault="pause one_consumer")
    verdict = judge(t)
    assert verdict.validity is Validity.VALID, verdict.summary
    assert verdict.counts["faults_recovery_covered_by_later_fault"] == 1
    assert verdict.figures["fault_1.recovery_s"] == 0.0


def test_a_kill_loop_is_judged_after_its_last_fault():
    """Faults too close for recovery to be seen between them are covered by the last one's recovery."""
    import numpy as np
    import pandas as pd

    from harness.checkers import CheckConfig, Validity
    from harness.checkers.degradation import graceful_degradation
    from harness.history.schema import METRICS_COLUMNS, OPS_COLUMNS, History, Phase, RunMeta, conform, empty_frame

    starts = (8.0, 11.0, 14.0)  # kill loop: 1 s down, the next 2 s after the restart

    def refusing(t):  # during a fault and 1.5 s after it, ingest answers 503 + Retry-After
        return any(s <= t < s + 2.5 for s in starts)

    rows, op_id = [], 0
    for t in np.arange(0.0, 30.0, 0.05):  # 20/s offered, answered within 5 ms
        rows.append(
            {
                "time_s": t,
                "process": "client-0-1",
                "type": "invoke",
                "f": "submit",
                "op_id": op_id,
                "event_id": f"e{op_id}",
                "intended_time_s": t,
                "attempt": 1,
                "valid_body": True,
            }
        )
        if refusing(t):
            rows.append(
                {
                    "time_s": t + 0.005,
                    "process": "client-0-1",
                    "type": "info",
                    "f": "submit",
                    "op_id": op_id,
                    "event_id": f"e{op_id}",
                    "status_code": 503,
                    "latency_ms": 5.0,
                    "error": "http_503",
                    "retry_after_s": 1.0,
                }
            )
        else:
            rows.append(
                {
                    "time_s": t + 0.005,
                    "process": "client-0-1",
                    "type": "ok",
                    "f": "submit",
                    "op_id": op_id,
                    "event_id": f"e{op_id}",
                    "status_code": 202,
                    "latency_ms": 5.0,
                }
            )
        op_id += 1
    for fault_id, start in enumerate(starts):
        for f, t in (("fault_start", start), ("fault_stop", start + 1.0)):
            rows.append(
                {
                    "time_s": t,
                    "process": "nemesis",
                    "type": "ok",
                    "f": f,
                    "op_id": 10**6 + op_id,
                    "fault_id": fault_id,
                    "fault": "kill one_consumer",
                }
            )
            op_id += 1
    ops = conform(pd.DataFrame(rows).sort_values("time_s").assign(index=lambda d: range(len(d))), OPS_COLUMNS, "ops")
    meta = RunMeta("r", 1, phases=(Phase("warmup", 0.0, 2.0), Phase("baseline", 2.0, 8.0)))
    history = History(ops=ops, metrics=empty_frame(METRICS_COLUMNS), observation=None, meta=meta)
    verdict = graceful_degradation(history, CheckConfig(recovery_s_max=5.0, fault_windows_min=3))
    assert verdict.validity is Validity.VALID, verdict.summary
    assert verdict.counts["faults_recovery_covered_by_later_fault"] == 2
    assert verdict.counts["faults_recovered"] == 1
